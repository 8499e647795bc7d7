"""What every request and response of the web goes through: Origin check and security headers.

- A state-changing request (any method but GET, HEAD, OPTIONS) must come from a page of this very
  server: its ``Origin`` header (or, without one, its ``Referer``) must equal the scheme, host and
  port the request was sent to. SameSite cookies alone treat another port of the same host as the
  same site; the Origin does not. Refused with 403 and a message naming both origins.
- Every response carries a Content-Security-Policy (scripts only from this server or with this
  response's nonce, no framing: ``frame-ancestors 'none'``), ``X-Content-Type-Options: nosniff``,
  ``Referrer-Policy: same-origin``, ``X-Frame-Options: DENY`` and, over HTTPS, HSTS. Pages are not
  cached (``Cache-Control: no-store``) unless the handler said otherwise.
- A form post (any state-changing request outside the booking API, which caps its own bodies) may
  carry at most :data:`FORM_LIMIT` bytes: larger is refused with 413 before the handler runs, from
  ``Content-Length`` or while the body streams, never holding more than the limit. Starlette reads
  a urlencoded form whole into memory, so without this one request to the sign-in page could
  fill the server's memory.

The nonce for inline scripts is put in ``scope["state"]["csp_nonce"]``.
"""

from __future__ import annotations

import ipaddress
import secrets
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hall_devices.catalog import both

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
# Bytes. The largest form of either web (a bookings page row) is under 4 KiB; the rest is room for
# odd but harmless input (every field of a form 5,000 characters long is refused by its handler, by name).
FORM_LIMIT = 256 * 1024


async def read_form_body(receive: Receive, limit: int) -> tuple[bytes, bool] | None:
    """The whole request body from ``receive``: (body, True); (b"", False) once it is past ``limit``
    (bytes; reading stops there); None if the client went away."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"", False
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True


class Guard:
    """ASGI middleware: refuses cross-origin state changes and oversized forms, adds the security
    headers."""

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
                    f"{both('cross_origin')} (it came from {said}, not from {own})",
                    status_code=403)
                await response(scope, receive, send_with_headers)
                return
            capped = await self._capped(scope, headers, receive, send_with_headers)
            if capped is None:
                return
            receive = capped
        await self.app(scope, receive, send_with_headers)

    @staticmethod
    async def _capped(scope: Scope, headers: Headers, receive: Receive, send: Send) -> Receive | None:
        """A ``receive`` that replays the form's body, read here up to :data:`FORM_LIMIT`; None when
        the request was answered (413) or the client went away."""
        declared = headers.get("content-length", "")
        too_large = PlainTextResponse(
            f"{both('form_too_large')} (larger than {FORM_LIMIT} bytes)", status_code=413)
        # The server (h11) has already refused a Content-Length that is not a number.
        if declared.isdigit() and int(declared) > FORM_LIMIT:
            await too_large(scope, receive, send)
            return None
        read = await read_form_body(receive, FORM_LIMIT)
        if read is None:
            return None
        body, fits = read
        if not fits:
            await too_large(scope, receive, send)
            return None
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the client's disconnect, when it comes

        return replay


def proxy_list(text: str, name: str) -> list[str]:
    """``text`` (comma-separated IP addresses or networks) as a list; raises ValueError naming the
    setting ``name`` and the first entry that is not one. Trusting anyone is refused, whether
    written ``*`` or as every address (``0.0.0.0/0``, ``::/0``)."""
    found = [p.strip() for p in text.split(",") if p.strip()]
    for entry in found:
        try:
            every = ipaddress.ip_network(entry, strict=False).prefixlen == 0
        except ValueError:
            raise ValueError(f"{name}: {entry[:60]!r} is not an IP address or network "
                             "(a proxy's own address, e.g. 127.0.0.1)") from None
        if every:
            raise ValueError(f"{name}: {entry[:60]!r} is every address, trusting anyone "
                             "(a proxy's own address, e.g. 127.0.0.1)")
    return found
