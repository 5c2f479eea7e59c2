"""The workspace's routes (these URLs are a contract; see docs/review.md):

* ``GET /``: every run under the reports directory, newest first, filterable by ``?state=``;
* ``GET /runs/<run_id>``: what needs a decision, where the run stands against its policy,
  the sign-off history from the ledger, the hashes a decision binds to, then the report;
* ``GET /runs/<run_id>/report``: the report, rendered as ``report.html`` is (framed above);
* ``POST /runs/<run_id>/approve``, ``/reject``, ``/waive``: the sign-off core's functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from auditft.serve.security import HEADERS, PAGE_CSP, REPORT_CSP, SESSION_COOKIE, Sessions, same_origin, shown_digest

#: what a successful decision says on the page it returns to (fixed texts, never from the URL)
DONE = {"approve": "Approved for release: recorded in the ledger.", "reject": "Rejected: recorded in the ledger.",
        "waive": "Failing check accepted: recorded in the ledger."}
ACTIONS = ("approve", "reject", "waive")


@dataclass(frozen=True)
class Workspace:
    reports: Path
    #: the reviewer every decision is made as (fixed at start), unless ``user_header`` is set
    reviewer: str | None
    key: Path | None
    #: team mode: the reverse proxy's header that names the signed-in user (trusted only when set)
    user_header: str | None
    pm: Any


def create_app(workspace: Workspace) -> Any:
    from jinja2 import Environment, PackageLoader, select_autoescape
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, RedirectResponse, Response
    from starlette.routing import Route

    env = Environment(loader=PackageLoader("auditft.serve", "templates"), autoescape=select_autoescape(["j2"]))
    sessions = Sessions()

    def page(request: Request, template: str, status: int = 200, **context: Any) -> Response:
        session = request.cookies.get(SESSION_COOKIE) or sessions.new_session()
        html = env.get_template(template).render(csrf=sessions.token(session), reviewer=_reviewer(request), **context)
        response = HTMLResponse(html, status_code=status, headers={**HEADERS, "Content-Security-Policy": PAGE_CSP})
        if request.cookies.get(SESSION_COOKIE) != session:
            response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="strict", path="/")
        return response

    def _reviewer(request: Request) -> str | None:
        if workspace.user_header:
            return request.headers.get(workspace.user_header)
        return workspace.reviewer

    def _run_dir(run_id: str) -> Path | None:
        from auditft.signoff.layout import RUN_ID, STATE_FILE

        if not RUN_ID.match(run_id):
            return None
        run_dir = workspace.reports / run_id
        return run_dir if (run_dir / STATE_FILE).is_file() else None

    async def index(request: Request) -> Response:
        from auditft.errors import AuditftError
        from auditft.signoff.layout import find_runs
        from auditft.signoff.status import run_status

        wanted = request.query_params.get("state")
        rows = []
        for run_dir in find_runs(workspace.reports):
            try:
                rows.append(run_status(run_dir))
            except AuditftError as exc:
                rows.append({"run_id": run_dir.name, "state": "unreadable", "waiting_for": str(exc)})
        rows.sort(key=lambda r: str(r.get("created_at") or ""), reverse=True)
        states = sorted({r["state"] for r in rows})
        shown = [r for r in rows if not wanted or r["state"] == wanted]
        return page(request, "index.html.j2", rows=shown, states=states, wanted=wanted, total=len(rows),
                    reports=workspace.reports)

    async def run_page(request: Request) -> Response:
        run_dir = _run_dir(request.path_params["run_id"])
        if run_dir is None:
            return page(request, "message.html.j2", 404, title="No such run",
                        message=f"{request.path_params['run_id']!r} is not a run under {workspace.reports}")
        done = DONE.get(request.query_params.get("done", ""))
        return _render_run(request, run_dir, notice=done)

    def _render_run(request: Request, run_dir: Path, *, notice: str | None = None, error: str | None = None,
                    status: int = 200) -> Response:
        from auditft.errors import AuditftError

        try:
            context = run_context(run_dir)
        except AuditftError as exc:
            return page(request, "message.html.j2", 409, title="This run cannot be reviewed",
                        message=f"{exc} (on the CLI: exit {int(exc.exit_code)}; run `auditft verify`)")
        return page(request, "run.html.j2", status, notice=notice, error=error, **context)

    async def report_view(request: Request) -> Response:
        from auditft.errors import AuditftError
        from auditft.report.html import render_html
        from auditft.signoff.rendering import review_info
        from auditft.signoff import clock
        from auditft.signoff.review import load_review

        run_dir = _run_dir(request.path_params["run_id"])
        if run_dir is None:
            return Response("no such run", status_code=404, headers=HEADERS)
        try:
            review = load_review(run_dir)
        except AuditftError as exc:
            return Response(str(exc), status_code=409, headers=HEADERS)
        html = render_html(review.report, workspace.pm, state=review.state(), review=review_info(review, clock.utcnow()))
        return HTMLResponse(html, headers={**HEADERS, "Content-Security-Policy": REPORT_CSP})

    async def decide(request: Request) -> Response:
        from auditft.signoff import decisions, events, integrity, review
        from auditft.errors import AuditftError, IntegrityError, RefusedError
        from auditft.signoff.rendering import rerender

        action = request.path_params["action"]
        run_dir = _run_dir(request.path_params["run_id"])
        if action not in ACTIONS or run_dir is None:
            return page(request, "message.html.j2", 404, title="No such run or action",
                        message="nothing was recorded")
        origin = f"{request.url.scheme}://{request.url.netloc}"
        if not same_origin(request.headers, origin):
            return page(request, "message.html.j2", 403, title="Refused",
                        message="this form did not come from this page (cross-site request); nothing was recorded")
        form = await request.form()
        if not sessions.valid(request.cookies.get(SESSION_COOKIE), form.get("csrf")):  # type: ignore[arg-type]
            return page(request, "message.html.j2", 403, title="Refused",
                        message="the form's session token is missing or stale; reload the page (nothing was recorded)")
        reviewer = _reviewer(request)
        if not reviewer:
            return page(request, "message.html.j2", 401, title="Who are you?",
                        message=f"the {workspace.user_header} header naming the signed-in user is missing")
        try:
            context = run_context(run_dir)
        except AuditftError:
            return _render_run(request, run_dir)  # the integrity page says why
        if form.get("shown") != context["shown"]:
            return _render_run(request, run_dir, status=409, error=(
                "Refused: the run changed since this page was shown (its bytes, or a decision someone made "
                "in between). Nothing was recorded; read the page again before deciding."))
        text = str(form.get("comment" if action != "waive" else "reason") or "")
        try:
            if action == "approve":
                decisions.approve(run_dir, reviewer, text, key=workspace.key)
            elif action == "reject":
                decisions.reject(run_dir, reviewer, text, key=workspace.key)
            else:
                decisions.waive(run_dir, str(form.get("check") or ""), reviewer, text, key=workspace.key)
        except RefusedError as exc:
            return _render_run(request, run_dir, status=409, error=f"Refused by policy (CLI exit 4): {exc}")
        except IntegrityError as exc:
            return _render_run(request, run_dir, status=409, error=f"Integrity failure (CLI exit 6): {exc}")
        except AuditftError as exc:
            return _render_run(request, run_dir, status=400, error=f"Not recorded (CLI exit 2): {exc}")
        rerender(run_dir, plugins=workspace.pm)  # report.html on disk shows the new state, as after a CLI decision
        return RedirectResponse(f"/runs/{run_dir.name}?done={action}", status_code=303, headers=HEADERS)

    return Starlette(routes=[
        Route("/", index),
        Route("/runs/{run_id}", run_page),
        Route("/runs/{run_id}/report", report_view),
        Route("/runs/{run_id}/{action}", decide, methods=["POST"]),
    ])


def run_context(run_dir: Path, now: datetime | None = None) -> dict[str, Any]:
    """Everything the run page shows, from the sign-off core (raises its integrity errors)."""
    from datetime import timedelta

    from auditft.signoff.release import human_duration
    from auditft.signoff.rendering import review_info
    from auditft.signoff.layout import ledger_for
    from auditft.signoff import clock
    from auditft.signoff.events import bound_artefacts, check_id
    from auditft.signoff.integrity import ensure_intact
    from auditft.signoff.review import load_review

    now = now or clock.utcnow()
    review = load_review(run_dir)
    ensure_intact(run_dir)
    artefacts = bound_artefacts(run_dir)
    last_seq = max((e["seq"] for e in ledger_for(run_dir).events(review.run_id)), default=None)
    policy = review.policy
    needs = [{**c, "id": check_id(c), "waiver": review.waivers.get(check_id(c))}
             for c in review.report["checks"] if c["status"] != "pass"]
    live = review.live_approvals(now)
    window_ends = review.window_ends()
    remaining = window_ends - now
    expiries = [(a["actor"], _parse(a.get("at", a["time"])) + timedelta(seconds=policy["approval_expires_seconds"]))
                for a in live]
    return {
        "run_id": review.run_id, "report": review.report, "state": review.state(), "needs": needs,
        "unwaived": review.unwaived(), "policy": policy, "live": live, "expiries": expiries,
        "window_ends": window_ends, "window_open": remaining.total_seconds() > 0,
        "window_left": human_duration(remaining.total_seconds()), "waiting_for": review.waiting_for(now),
        "history": review_info(review, now)["events"], "artefacts": artefacts,
        "shown": shown_digest(artefacts, last_seq), "last_seq": last_seq,
        "closed": bool(review.released or review.rejections or review.pending_release),
        "since_signoff": since_signoff(run_dir, review.run_id, artefacts.get("report.json")),
    }


def since_signoff(run_dir: Path, run_id: str, report_sha256: str | None) -> dict[str, Any] | None:
    """``auditft compare RUN --against-released``'s result for this run, when one was written
    (``<reports>/compare/<run_id>/compare.json``); ``stale`` when the run's report changed since."""
    import json

    from auditft.compare.released import against_path

    path = against_path(run_dir.parent, run_id) / "compare.json"
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
        against = found["against_released"]
        subject = next(r for r in found["runs"] if r["label"] == against["subject"])
    except (OSError, ValueError, KeyError, TypeError, StopIteration):
        return None  # none written, or not a comparison against a release: nothing to show
    if subject.get("run_id") != run_id:
        return None
    return {"path": str(path), "released": against.get("released"), "created_at": found.get("created_at"),
            "changes": list(against.get("changes") or []), "warnings": list(found.get("warnings") or []),
            "stale": subject.get("report_sha256") != report_sha256}


def _parse(text: str) -> datetime:
    from auditft.signoff.clock import parse_iso

    return parse_iso(text)

