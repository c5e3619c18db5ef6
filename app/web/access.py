"""Who may call a route: API keys with scopes, and a rate limit per caller.

Every route declares the scope it needs with ``**scope("predict")``;
:class:`AccessPlugin` checks the caller's key against it before the
handler runs, so each application answers 401, 403 and 429 in its own
protocol's error shape. Without a key file every route is open; the
rate limit, when on, counts per key name, or per client address for
callers without a key.
"""

import functools
import ipaddress

import bottle

from app.errors import ServiceError

SCOPE_KEY = "access.scope"
OPEN = "open"
KEY_NAME = "app.key_name"


class Unauthorized(ServiceError):
    """No valid API key came with a request that needs one."""

    status = 401
    code = "unauthorized"


class Forbidden(ServiceError):
    """The API key is valid but lacks the route's scope."""

    status = 403
    code = "forbidden"


class RateLimited(ServiceError):
    """The caller went over the rate limit."""

    status = 429
    code = "rate_limited"


def scope(name):
    """Return the route option saying which scope the route needs."""
    return {SCOPE_KEY: name}


def presented_key(environ):
    """Return the key of ``Authorization: Bearer`` or ``X-API-Key``."""
    authorization = environ.get("HTTP_AUTHORIZATION", "")
    kind, _, value = authorization.partition(" ")
    if kind.lower() == "bearer" and value.strip():
        return value.strip()
    return environ.get("HTTP_X_API_KEY", "").strip() or None


def client_address(environ, trusted_proxies=()):
    """Return the caller's address, believing proxies only if trusted.

    ``X-Forwarded-For`` is read from the right: each hop appends the
    address it saw, so the first address not of a trusted proxy is the
    client; a header from an untrusted peer is ignored entirely.
    """
    remote = environ.get("REMOTE_ADDR", "")
    if not _trusted(remote, trusted_proxies):
        return remote
    hops = [hop.strip() for hop in
            environ.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted_proxies):
            return hop
    return hops[0] if hops else remote


def _trusted(address, networks):
    """Tell whether an address is in one of the trusted networks."""
    if not networks:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


class AccessPlugin:
    """Check API keys, scopes and the rate limit before each handler."""

    name = "access"
    api = 2

    def __init__(self, keys=None, limiter=None, trusted_proxies=(),
                 on_limited=None):
        """Take the key file (None: open), the limiter (None: no limit)."""
        self.keys = keys
        self.limiter = limiter
        self.trusted_proxies = trusted_proxies
        self.on_limited = on_limited

    def apply(self, callback, route):
        """Wrap one route's handler with its scope's checks."""
        needed = route.config.get(SCOPE_KEY)
        if needed is None:
            raise ValueError(f"route {route.method} {route.rule} declares "
                             "no scope")
        if needed == OPEN or (self.keys is None and self.limiter is None):
            # Nothing to check on this route: spare it the wrapper.
            return callback

        @functools.wraps(callback)
        def check_access_then_handle(*args, **kwargs):
            environ = bottle.request.environ
            name = self._authorize(environ, needed)
            if self.limiter is not None and needed != OPEN:
                self._limit(name or client_address(
                    environ, self.trusted_proxies))
            return callback(*args, **kwargs)
        return check_access_then_handle

    def _authorize(self, environ, needed):
        """Return the caller's key name (None without keys); raise if not."""
        if self.keys is None or needed == OPEN:
            return None
        presented = presented_key(environ)
        key = self.keys.identify(presented) if presented else None
        if key is None:
            raise Unauthorized(
                "send a valid API key as Authorization: Bearer <key> or "
                "X-API-Key: <key>", headers={"WWW-Authenticate": "Bearer"})
        environ[KEY_NAME] = key.name
        if needed not in key.scopes:
            raise Forbidden(f"the key {key.name!r} lacks the scope "
                            f"{needed!r}")
        return key.name

    def _limit(self, caller):
        """Count the request; raise RateLimited when over the limit."""
        decision = self.limiter.check(caller)
        headers = self.limiter.headers(decision)
        if not decision.allowed:
            if self.on_limited is not None:
                self.on_limited()
            raise RateLimited(
                f"more than {decision.limit} requests in "
                f"{self.limiter.window} s; retry in "
                f"{decision.reset_seconds} s",
                headers={**headers,
                         "Retry-After": str(decision.reset_seconds)})
        for name, value in headers.items():
            bottle.response.set_header(name, value)
