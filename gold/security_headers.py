"""Headers on every response of the labelers' page that tell the browser what the page
may do: load scripts, styles and images only from this server, never be framed, never
post a form elsewhere, and not guess content types.

The Content-Security-Policy is the strict one OWASP's CSP Cheat Sheet recommends for a
page that needs no inline code: the templates hold no inline script or style (the page's
state is a `<script type="application/json">` data block, which is not executed, and so
not subject to `script-src`). `frame-ancestors 'none'` and X-Frame-Options DENY (for
browsers without CSP level 2) stop clickjacking: another site cannot put the label form
under a decoy. `Referrer-Policy: same-origin` keeps record URLs from leaking to the sites
a guideline links to, while same-origin requests keep the Referer that the Origin check
(`request_guards.py`) falls back on.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = ("default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
                           "object-src 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
_RAW = [(name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]
_NAMES = {name for name, _ in _RAW}


class SecurityHeaders:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [header for header in message.get("headers", []) if header[0] not in _NAMES]
                message = {**message, "headers": [*kept, *_RAW]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
