"""What every request and response of the web goes through: Origin check and security headers.

- A state-changing request (any method but GET, HEAD, OPTIONS) must come from a page of this very
  server: its ``Origin`` header (or, without one, its ``Referer``) must equal the scheme, host and
  port the request was sent to. SameSite cookies alone treat another port of the same host as the
  same site; the Origin does not. Refused with 403 and a message naming both origins.
- Every response carries a Content-Security-Policy (scripts only from this server or with this
  response's nonce, no framing: ``frame-ancestors 'none'``), ``X-Content-Type-Options: nosniff``,
  ``Referrer-Policy: same-origin``, ``X-Frame-Options: DENY`` and, over HTTPS, HSTS. Pages are not
  cached (``Cache-Control: no-store``) unless the handler said otherwise.

The nonce for inline scripts is put in ``scope["state"]["csp_nonce"]``.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def content_security_policy(nonce: str) -> str:
    # Plotly sets inline styles on its charts, hence 'unsafe-inline' for styles (never for scripts).
    return ("default-src 'self'; "
            f"script-src 'self' 'nonce-{nonce}'; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
            "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
            "object-src 'none'")


def request_origin(headers: Headers) -> str | None:
    """The origin a browser says the request came from: ``Origin``, else the ``Referer``'s."""
    origin = headers.get("origin")
    if origin:
        return origin
    referer = headers.get("referer")
    if referer:
        parts = urlsplit(referer)
        if parts.scheme and parts.netloc:
            return f"{parts.scheme}://{parts.netloc}"
    return None


API_PREFIX = "/api/v1/"


class Guard:
    """ASGI middleware: refuses cross-origin state changes, adds the security headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(16)
        scope.setdefault("state", {})["csp_nonce"] = nonce
        headers = Headers(scope=scope)
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out["Content-Security-Policy"] = content_security_policy(nonce)
                out["X-Content-Type-Options"] = "nosniff"
                out["X-Frame-Options"] = "DENY"
                out["Referrer-Policy"] = "same-origin"
                out["Cross-Origin-Opener-Policy"] = "same-origin"
                if "cache-control" not in out:
                    out["Cache-Control"] = "no-store"
                if https:
                    out["Strict-Transport-Security"] = "max-age=31536000"
            await send(message)

        # The booking platform's API (web/bookings.py) authenticates by bearer token only: a
        # browser's cookies give it nothing, so another origin gains nothing there.
        if scope["method"] not in SAFE_METHODS and not scope.get("path", "").startswith(API_PREFIX):
            own = f"{scope.get('scheme', 'http')}://{headers.get('host', '')}"
            origin = request_origin(headers)
            if origin != own:
                said = origin or "none"
                response = PlainTextResponse(
                    f"来源不符，请求被拒绝 / request refused: it came from {said}, not from {own}",
                    status_code=403)
                await response(scope, receive, send_with_headers)
                return
        await self.app(scope, receive, send_with_headers)
