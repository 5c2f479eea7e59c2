"""The report in a real browser (headless Chromium): hostile text from the data stays text.

Payloads in example texts, group names, labels, the suite description and the author try to
run script, inject elements and load from a local HTTP server. A control page with the same
payloads left unescaped proves that the detectors fire when escaping is missing.
"""

from __future__ import annotations

import copy
import html.parser
import http.server
import json
import shutil
import subprocess
import threading
from pathlib import Path

import pytest


from auditft.plugins import make_plugin_manager
from auditft.report.html import render_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=3000"]


@pytest.fixture
def beacon():
    """A loopback HTTP server that counts every request it gets."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"x")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()


def payloads(base: str) -> list[str]:
    return [
        f'<script>document.body.insertAdjacentHTML("beforeend","<div id=pwned-script></div>");'
        f'fetch("{base}/script")</script>',
        f'<img src="{base}/img" onerror="document.body.insertAdjacentHTML(\'beforeend\',\'<div id=pwned-img></div>\')">',
        f'"><svg onload="fetch(\'{base}/svg\')"><div id="pwned-attr">',
        f'<style>body{{background:url({base}/css)}}</style><link rel=stylesheet href="{base}/link">',
        f'<iframe src="{base}/frame"></iframe><a id="pwned-link" href="javascript:alert(1)">x</a>',
    ]


def hostile_report(report: dict, base: str) -> dict:
    bad = payloads(base)
    report = copy.deepcopy(report)
    report["description"] = bad[0]
    report["author"] = bad[1]
    report["checks"][0]["rationale"] = bad[2]
    evidence = report["audits"]["accuracy"]["evidence"]
    evidence["labels"] = [bad[3], bad[4]]
    example = {"row": 0, "source": bad[4], "text": bad[0] + bad[1], "label": bad[2], "predicted": bad[3],
               "confidence": 0.9, "groups": {bad[2]: bad[1], "sex": bad[0]}}
    evidence["examples"] = [example, {**example, "text": bad[3] + bad[4]}]
    return report


class _Elements(html.parser.HTMLParser):
    """Tag names and ids of the elements in a serialised DOM (text stays text)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.ids: set[str] = set()
        self.handlers: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name == "id":
                self.ids.add(value or "")
            if name.startswith("on") or (value or "").strip().lower().startswith("javascript:"):
                self.handlers.append(f"{tag}[{name}]")


def elements(dom: str) -> _Elements:
    parser = _Elements()
    parser.feed(dom)
    return parser


def dump_dom(path: Path) -> str:
    out = subprocess.run([CHROMIUM, *FLAGS, "--dump-dom", path.as_uri()], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_chromium_is_installed():
    assert CHROMIUM, "chromium is missing: `make test` installs it (apt-get install chromium)"


def test_payloads_are_inert_in_chromium(finished_run, beacon, tmp_path):
    base, hits = beacon
    _, run_dir = finished_run
    report = hostile_report(json.loads((run_dir / "report.json").read_text()), base)
    page = tmp_path / "report.html"
    page.write_text(render_html(report, make_plugin_manager(entry_points=False, env={})))
    dom = dump_dom(page)
    found = elements(dom)
    assert not {i for i in found.ids if i.startswith("pwned")}, found.ids  # nothing injected or scripted
    assert not {"script", "iframe", "img", "link", "style"} & set(found.tags[found.tags.index("body"):])
    assert found.handlers == []  # no on* handler or javascript: URL became an attribute
    assert hits == [], hits  # no request left the page
    assert "&lt;script&gt;" in dom  # the payload is visible as text


def test_control_page_without_escaping_is_caught(beacon, tmp_path):
    """The same detectors on a page that inserts the payloads raw: they must fire."""
    base, hits = beacon
    page = tmp_path / "control.html"
    page.write_text("<!DOCTYPE html><html><body>" + "".join(payloads(base)) + "</body></html>")
    found = elements(dump_dom(page))
    assert {"pwned-attr", "pwned-link"} <= found.ids and found.handlers
    assert hits, "the control page made no request: the beacon would not detect a leak"
