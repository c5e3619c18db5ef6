"""What fetching a client-supplied URL may do, and for how long.

Kept apart from the fetching itself so that the routes can hold a policy
without importing urllib3 at start: only a request with a URL needs it.
"""

from dataclasses import dataclass
from typing import Callable, Optional

from app.fetch.addresses import IPAddress


@dataclass(frozen=True)
class FetchPolicy:
    """Limits and permissions of ``fetch`` and ``fetch_all``.

    ``allow_private`` lets private, loopback and link-local addresses
    through; never enable it on a host with a metadata service.
    Timeouts are in seconds: ``connect_timeout`` bounds the TCP connect,
    ``read_timeout`` the wait for each piece of the response, and
    ``total_timeout`` the whole of one ``fetch`` or ``fetch_all``,
    redirects included, because a server that drips one byte just inside
    the read timeout is never stopped by the other two.
    ``address_allowed``, if given, must also accept every address; it can
    only narrow what is allowed.
    """

    allow_private: bool = False
    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    max_redirects: int = 3
    max_bytes: int = 10485760
    total_timeout: float = 15.0
    address_allowed: Optional[Callable[[IPAddress], bool]] = None
