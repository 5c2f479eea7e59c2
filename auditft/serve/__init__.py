"""``auditft serve``: the reviewer's workspace, a local web page to read, decide and sign.

A Starlette application served by uvicorn. It adds no second way to record a decision:
every approve, reject and waive goes through ``auditft.signoff`` exactly as the CLI does,
with the same policy and integrity checks. What the web layer adds is safety for a browser:
a fixed reviewer identity, per-session CSRF tokens, same-origin checks, the hashes the page
showed bound into every form, a strict Content-Security-Policy and no script at all.
"""
