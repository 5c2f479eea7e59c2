"""The reviewer's workspace (``auditft serve``) in a real browser: Playwright driving the
system Chromium (it cannot download its own here), against uvicorn on 127.0.0.1.

A reviewer takes a blocked run to approved: list, open, accept the failing check (bob), approve
as a second reviewer (carol), then release from the CLI; the ledger holds the same events a
CLI sign-off writes and ``verify`` passes. Refused, with the ledger byte-identical: a POST
without the session token, a cross-site form from another origin, a replayed form, a form
whose shown hashes are stale, a run id that is not a run. Hostile text stays inert.
"""

from __future__ import annotations

import http.server
import os
import shutil
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditft.cli import cli
from auditft.signoff.layout import ledger_for
from workspace_server import Server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
SHOTS = os.environ.get("AUDITFT_SCREENSHOTS")  # a folder: also save the screenshots there (docs/)


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.fail("chromium is missing: `make test` installs Debian's chromium (make chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield instance
        instance.close()


def _shot(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(SHOTS) / name)
    return path


def test_a_reviewer_takes_a_blocked_run_to_approved_in_the_browser(runs, browser, tmp_path):
    run = runs["blocked"]
    reports = run.parent
    dialogs: list[str] = []
    with Server(reports, "bob") as bob, Server(reports, "carol") as carol:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(bob.url + "/")
        row = page.locator("tr", has_text=run.name)
        assert "blocked" in row.inner_text()
        _shot(page, tmp_path, "workspace-list.png")
        row.locator("a").click()
        assert page.url.endswith(f"/runs/{run.name}")
        assert page.locator("#decide").get_by_text("accuracy:macro_f1").count() == 1
        page.frame_locator("iframe").locator("h1").first.wait_for()  # the framed report has rendered
        _shot(page, tmp_path, "workspace-run.png")
        page.get_by_label("reason for accuracy:macro_f1").fill('impossible on purpose <script>alert("x")</script>')
        page.get_by_role("button", name="Accept this failing check").click()
        assert "Failing check accepted" in page.locator("[role=status]").inner_text()
        assert "awaiting review" in page.locator("h1").inner_text()
        # the hostile reason is shown as text, and nothing ran
        assert '<script>alert("x")</script>' in page.locator("#history").inner_text() and dialogs == []

        # bob cannot also be the second reviewer; carol, on her own workspace, approves
        second = browser.new_page()
        second.goto(f"{carol.url}/runs/{run.name}")
        assert "signed in as carol" in second.locator("header").inner_text()
        second.get_by_label("approval comment").fill("read the report and the waiver")
        second.get_by_role("button", name="Approve for release").click()
        assert "Approved for release" in second.locator("[role=status]").inner_text()
        assert "approved" in second.locator("h1").inner_text()
        history = second.locator("#history").inner_text()
        assert "approved for release" in history and "accepted a failing check" in history
        page.close()
        second.close()
    registry = tmp_path / "registry"
    released = CliRunner().invoke(cli, ["release", str(run), "--to", str(registry), "--actor", "rel"])
    assert released.exit_code == 0, released.output
    assert CliRunner().invoke(cli, ["verify", str(run)]).exit_code == 0
    kinds = [e["type"] for e in ledger_for(run).events(run.name) if e["type"] != "sealed"]
    assert kinds == ["created", "gated", "waived", "approved", "release_intent", "released"]
    waived = next(e for e in ledger_for(run).events(run.name) if e["type"] == "waived")
    assert waived["actor"] == "bob" and waived["meaning"] == "accepted a failing check"


def _post(url: str, fields: dict[str, str], headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, data=urllib.parse.urlencode(fields).encode(), headers=headers or {},
                                     method="POST")
    try:
        with urllib.request.urlopen(request) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_forged_stale_and_replayed_forms_change_nothing(runs, browser, tmp_path):
    run = runs["passed"]
    ledger = ledger_for(run).path
    with Server(run.parent, "bob") as server:
        page = browser.new_page()
        page.goto(f"{server.url}/runs/{run.name}")
        csrf = page.locator("input[name=csrf]").first.get_attribute("value")
        shown = page.locator("input[name=shown]").first.get_attribute("value")
        cookie = next(c for c in page.context.cookies() if c["name"] == "auditft_session")
        same = {"Origin": server.url, "Cookie": f"auditft_session={cookie['value']}"}
        approve = f"{server.url}/runs/{run.name}/approve"
        before = ledger.read_bytes()
        assert _post(approve, {"shown": shown, "comment": "no token"}, same) == 403
        assert _post(approve, {"csrf": csrf, "shown": shown, "comment": "other origin"},
                     {**same, "Origin": "http://127.0.0.1:1"}) == 403
        assert _post(approve, {"csrf": csrf, "shown": shown, "comment": "no cookie"}, {"Origin": server.url}) == 403
        assert _post(approve, {"csrf": "0" * 64, "shown": shown, "comment": "forged token"}, same) == 403
        assert _post(approve, {"csrf": csrf, "shown": "0" * 64, "comment": "stale hashes"}, same) == 409
        assert _post(f"{server.url}/runs/not-a-run/approve", {"csrf": csrf, "shown": shown, "comment": "x"},
                     same) == 404
        assert _post(f"{server.url}/runs/{run.name}/delete", {"csrf": csrf, "shown": shown}, same) == 404
        assert ledger.read_bytes() == before

        # a real cross-site form: another origin's page posts to the workspace
        class Attacker(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                body = (f'<form method="post" action="{approve}"><input name="csrf" value="{csrf}">'
                        f'<input name="shown" value="{shown}"><input name="comment" value="csrf">'
                        '<button id="go">win a prize</button></form>').encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        evil = http.server.HTTPServer(("127.0.0.1", 0), Attacker)
        threading.Thread(target=evil.serve_forever, daemon=True).start()
        try:
            page.goto(f"http://localhost:{evil.server_address[1]}/")
            with page.expect_navigation():
                page.click("#go")
            assert "cross-site" in page.content() or "session token" in page.content()
        finally:
            evil.shutdown()
        assert ledger.read_bytes() == before

        # a page whose bytes changed after it was shown: refused, nothing recorded
        page.goto(f"{server.url}/runs/{run.name}")
        (run / "model_card.md").write_text((run / "model_card.md").read_text() + "\nedited\n")
        page.get_by_label("approval comment").fill("looks fine")
        page.get_by_role("button", name="Approve for release").click()
        assert "cannot be reviewed" in page.content() and "bytes changed" in page.content()
        assert ledger.read_bytes() == before


def test_a_replayed_form_is_refused(runs, browser):
    run = runs["passed"]
    with Server(run.parent, "bob") as server:
        page = browser.new_page()
        page.goto(f"{server.url}/runs/{run.name}")
        page.get_by_label("rejection comment").fill("not this one")
        with page.expect_request(lambda r: r.method == "POST") as sent:
            page.get_by_role("button", name="Reject").click()
        assert "Rejected" in page.locator("[role=status]").inner_text()
        after = ledger_for(run).path.read_bytes()
        # the very request the browser sent, sent again in the same session: its digest is stale
        replay = page.context.request.post(sent.value.url, data=sent.value.post_data, headers={
            "Content-Type": "application/x-www-form-urlencoded", "Origin": server.url})
        assert replay.status == 409 and "changed since this page was shown" in replay.text()
        assert ledger_for(run).path.read_bytes() == after


def test_the_list_filters_by_state_and_the_report_is_framed_under_its_csp(runs, browser):
    with Server(runs["passed"].parent, "bob") as server:
        page = browser.new_page()
        page.goto(f"{server.url}/?state=blocked")
        text = page.locator("table").inner_text()
        assert runs["blocked"].name in text and runs["passed"].name not in text
        answer = urllib.request.urlopen(f"{server.url}/runs/{runs['passed'].name}/report")
        assert "frame-ancestors 'self'" in answer.headers["Content-Security-Policy"]
        assert "script-src" not in answer.headers["Content-Security-Policy"]  # default-src 'none': no script
        assert "AWAITING REVIEW" in answer.read().decode()
        page.goto(f"{server.url}/runs/{runs['passed'].name}")
        assert page.frame_locator("iframe").locator("h1").count() >= 1


def test_serve_refuses_bad_arguments_and_warns_off_loopback(tmp_path, monkeypatch):
    import uvicorn

    result = CliRunner().invoke(cli, ["serve", "--reports", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "not a directory" in result.output
    result = CliRunner().invoke(cli, ["serve", "--reports", str(tmp_path), "--reviewer", "\x1b[31m"])
    assert result.exit_code == 2 and "--reviewer" in result.output
    started: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: started.append(kw))
    result = CliRunner().invoke(cli, ["serve", "--reports", str(tmp_path), "--reviewer", "bob"])
    assert result.exit_code == 0 and started == [{"host": "127.0.0.1", "port": 8765, "log_level": "warning"}]
    assert "warning" not in result.output and "reviewer bob" in result.output
    result = CliRunner().invoke(cli, ["serve", "--reports", str(tmp_path), "--reviewer", "bob", "--host", "0.0.0.0"])
    assert result.exit_code == 0 and "warning: listening on 0.0.0.0" in result.output
