"""Requests the labelers' page refuses before any route sees them: cross-origin changes
and oversized bodies. Both are plain ASGI middleware, so they guard every route,
`/login` and the API included, and cannot be forgotten on a new one.

**Same origin.** A request that can change something (any method but GET, HEAD and
OPTIONS) is refused with 403 when its `Origin` header, or without one its `Referer`,
names another origin than the one the server is serving: the scheme it serves (https
under `--certfile` or `--behind-https-proxy`) and the `Host` the request was sent to.
This is OWASP's "verifying origin with standard headers" (CSRF Prevention Cheat
Sheet). Browsers send `Origin` on every POST, PUT and DELETE, from forms and from
`fetch`, so a page on another site is always caught; `Origin: null` (a sandboxed frame,
a redirect across sites) is refused too. A request with neither header cannot come from
a page in a modern browser; it is a script driving the API with its session cookie, and
it is let through: the session cookie is SameSite=Strict and HttpOnly, so such a script
had to be given the cookie, which is the credential itself.

A TLS proxy in front must pass the `Host` the browser used (nginx: `proxy_set_header
Host $host;`; Caddy does by default), or every change is refused, with both origins
in the message.

**Body size.** A body over `MAX_BODY_BYTES` is refused with 413 before it is read into
memory: a label, its note and an edited input are a few kilobytes.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
MAX_BODY_BYTES = 1024 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def _origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin or URL; None when it names no http(s) origin."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:  # a port out of range or not a number
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[parts.scheme]


class SameOriginChanges:
    """Refuse a state-changing request sent from another origin (see the module docstring).
    `https`: the server is reached over HTTPS (its own TLS, or a TLS proxy in front)."""

    def __init__(self, app: ASGIApp, https: bool):
        self.app, self.scheme = app, "https" if https else "http"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            return await self.app(scope, receive, send)
        sent_from = _header(scope, b"origin")
        header = "Origin"
        if sent_from is None:
            sent_from, header = _header(scope, b"referer"), "Referer"
        if sent_from is None:
            return await self.app(scope, receive, send)
        host = _header(scope, b"host") or ""
        serving = _origin(f"{self.scheme}://{host}")
        if serving is None or _origin(sent_from) != serving:
            return await _refuse(send, 403, f"cross-origin request refused: {header} {sent_from[:200]!r} is not "
                                            f"this server ({self.scheme}://{host[:200]})")
        await self.app(scope, receive, send)


class _BodyTooLarge(HTTPException):
    """Raised while a route reads the body: FastAPI answers an HTTPException raised there
    itself (any other exception becomes its 400 "error parsing the body")."""

    def __init__(self, max_bytes: int):
        super().__init__(413, f"request body over {max_bytes} bytes")


class BodyLimit:
    """Refuse a request body over `MAX_BODY_BYTES` with 413, whether it declares its length
    or streams in chunks."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            return await _refuse(send, 413, _BodyTooLarge(self.max_bytes).detail)
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge(self.max_bytes)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except _BodyTooLarge as error:
            if started:
                raise
            await _refuse(send, 413, error.detail)
