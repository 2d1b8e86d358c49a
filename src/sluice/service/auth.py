"""Who may look: a token guards the service when it listens beyond the loopback interface."""

from __future__ import annotations

import hmac
import ipaddress

from starlette.requests import Request

from sluice.errors import ConfigError

#: Paths answered without a token: a load balancer's liveness probe carries none.
OPEN_PATHS = frozenset({"/healthz"})
#: The cookie a browser keeps the token in after it came once as ``?token=``.
COOKIE = "sluice_token"


def is_loopback(host: str) -> bool:
    if host in {"localhost", ""}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str | None) -> None:
    """Refuse to listen beyond the loopback interface without a token."""
    if not is_loopback(host) and not token:
        raise ConfigError(
            f"sluice serve on {host} would be open to the network: set SLUICE_HTTP_TOKEN (or "
            "--token) to a secret, or bind to 127.0.0.1"
        )


def presented(request: Request) -> str | None:
    """The token a request carries: a bearer header, a ``token`` query parameter, a cookie."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.query_params.get("token") or request.cookies.get(COOKIE)


def allowed(request: Request, token: str | None) -> bool:
    if token is None or request.url.path in OPEN_PATHS:
        return True
    given = presented(request)
    return given is not None and hmac.compare_digest(given.encode(), token.encode())
