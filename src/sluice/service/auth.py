"""Who may look: a token guards the service when it listens beyond the loopback interface."""

from __future__ import annotations

import hmac
import ipaddress
import json
from http.cookies import SimpleCookie

from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sluice.errors import ConfigError

#: Paths answered without a token: a load balancer's liveness probe carries none.
OPEN_PATHS = frozenset({"/healthz"})
#: The cookie a browser keeps the token in after it came once as ``?token=``.
COOKIE = "sluice_token"
#: The query parameter a browser's first visit carries the token in.
QUERY = "token"
REFUSAL = "a token is required (Authorization: Bearer <token>, or ?token=<token>)"


def is_loopback(host: str) -> bool:
    """Whether `host` only listens on this machine. An empty host means every interface."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str | None) -> None:
    """Refuse to listen beyond the loopback interface without a token."""
    if not is_loopback(host) and not token:
        shown = host or "every interface"
        raise ConfigError(
            f"sluice serve on {shown} would be open to the network: set SLUICE_HTTP_TOKEN (or "
            "--token) to a secret, or bind to 127.0.0.1"
        )


def presented(conn: HTTPConnection) -> str | None:
    """The token a request carries: a bearer header, a ``token`` query parameter, a cookie."""
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    return conn.query_params.get(QUERY) or conn.cookies.get(COOKIE)


def matches(given: str | None, token: str) -> bool:
    # compare_digest takes the same time whatever the first difference is.
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def allowed(
    conn: HTTPConnection, token: str | None, open_paths: frozenset[str] = OPEN_PATHS
) -> bool:
    if token is None or conn.url.path in open_paths:
        return True
    return matches(presented(conn), token)


class Guard:
    """ASGI middleware: every request but the liveness probe carries the token, when there is
    one; a browser that came with a good ``?token=`` keeps it in a cookie, so that the links of
    the dashboard need not repeat it. (A plain ASGI class rather than Starlette's
    BaseHTTPMiddleware: no extra task and stream per request.)"""

    def __init__(
        self, app: ASGIApp, token: str | None, open_paths: frozenset[str] = OPEN_PATHS
    ) -> None:
        self.app = app
        self.token = token or None
        #: Paths anyone may ask: the liveness probe, and public routes a flow mounts (a
        #: submission API, whose clients never hold the service's token).
        self.open_paths = OPEN_PATHS | open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.token is None:
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        if not allowed(conn, self.token, self.open_paths):
            await _refuse(send)
            return
        public = conn.url.path in self.open_paths
        if public or not matches(conn.query_params.get(QUERY), self.token):
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _setting_cookie(send, self.token))


def _setting_cookie(send: Send, token: str) -> Send:
    cookie: SimpleCookie = SimpleCookie()
    cookie[COOKIE] = token  # quoted as a cookie value needs, whatever the token holds
    morsel = cookie[COOKIE]
    morsel["httponly"] = True
    morsel["path"] = "/"
    morsel["samesite"] = "Strict"
    value = cookie.output(header="").strip()

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            MutableHeaders(scope=message).append("set-cookie", value)
        await send(message)

    return sending


async def _refuse(send: Send) -> None:
    body = json.dumps({"error": REFUSAL}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b'Bearer realm="sluice"'),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
