"""What keeps a browser form honest: sessions, CSRF tokens, same-origin checks, headers.

* A session is a random cookie (``HttpOnly``, ``SameSite=Strict``); the CSRF token in each
  form is an HMAC of it under a key made when the server starts, so a token is worthless in
  another session or after a restart.
* A POST must come from this origin: ``Origin`` (or, without it, ``Referer``) must be the
  server's own, and ``Sec-Fetch-Site``, when the browser sends it, must be ``same-origin``.
* Every form carries ``shown``: a digest of the run's bound artefact hashes and of the last
  ledger event the page showed. A decision made while either differs (the bytes changed, or
  someone decided in between, or the form is replayed) is refused.
* Every page is served with a Content-Security-Policy that allows no script and no remote
  load; the workspace pages may only post to themselves and frame the report they serve.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Any
from urllib.parse import urlsplit

SESSION_COOKIE = "auditft_session"
PAGE_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
            "form-action 'self'; frame-src 'self'; frame-ancestors 'none'")
#: the report's own policy (as in report.html), framed only by the workspace
REPORT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
              "form-action 'none'; frame-ancestors 'self'")
HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin", "Cache-Control": "no-store"}


class Sessions:
    """CSRF tokens bound to a session cookie under a key that lives as long as the server."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    @staticmethod
    def new_session() -> str:
        return secrets.token_urlsafe(32)

    def token(self, session: str) -> str:
        return hmac.new(self._key, session.encode("utf-8"), hashlib.sha256).hexdigest()

    def valid(self, session: str | None, token: str | None) -> bool:
        return bool(session and token) and hmac.compare_digest(self.token(session), str(token))  # type: ignore[arg-type]


def same_origin(headers: Any, origin: str) -> bool:
    """Whether a POST's headers say it came from ``origin`` (scheme://host:port)."""
    site = headers.get("sec-fetch-site")
    if site is not None and site != "same-origin":
        return False
    claimed = headers.get("origin")
    if claimed is None:
        referer = headers.get("referer")
        if referer is None:
            return False
        parts = urlsplit(referer)
        claimed = f"{parts.scheme}://{parts.netloc}"
    return claimed == origin


def shown_digest(artefacts: dict[str, str], last_seq: int | None) -> str:
    """What a form binds to: the bound artefact hashes and the last ledger event shown."""
    blob = json.dumps({"artefacts": artefacts, "last_seq": last_seq}, sort_keys=True).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()
