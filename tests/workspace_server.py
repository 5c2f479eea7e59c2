"""The reviewer's workspace app (``auditft serve`` as the command builds it) on a free
loopback port, in a thread: shared by the workspace and comparison tests."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any


class Server:
    def __init__(self, reports: Path, reviewer: str | None, *, user_header: str | None = None,
                 pm: Any = None) -> None:
        import uvicorn

        from auditft.plugins import make_plugin_manager
        from auditft.serve.app import Workspace, create_app

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        app = create_app(Workspace(reports.resolve(), reviewer, None, user_header, pm or make_plugin_manager()))
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error"))
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                return self
            time.sleep(0.05)
        raise RuntimeError("the workspace did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def get(self, path: str) -> str:
        with urllib.request.urlopen(f"{self.url}{path}") as answer:
            return answer.read().decode()
