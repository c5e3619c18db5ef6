"""Fetch client-supplied URLs, following and checking every redirect.

``fetch`` downloads one URL; ``fetch_all`` downloads a request's URLs in
order under one deadline.  Each hop of each URL is checked from scratch:
the URL (``urls``), its addresses, resolved once (``resolver``), then a
GET to a checked address (``transport``).
"""

import socket
from urllib.parse import urljoin

from app.errors import InvalidInput
from app.fetch import transport
from app.fetch.deadline import Deadline
from app.fetch.errors import fetch_failed
from app.fetch.policy import FetchPolicy
from app.fetch.resolver import check_addresses, resolve
from app.fetch.urls import check_url

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


def fetch_all(urls, policy, resolver=socket.getaddrinfo):
    """Download every URL of ``urls`` in order and return their bodies.

    One ``policy.total_timeout`` covers all of them together, so that a
    request holds a worker for one limit whatever its number of URLs.
    Raise as ``fetch`` does, at the first URL that fails.
    """
    urls = list(urls)
    if not urls:
        return []
    activity = "the fetch" if len(urls) == 1 else (
        f"fetching {len(urls)} URLs")
    with Deadline(policy.total_timeout, activity) as deadline:
        return [fetch(url, policy, resolver, deadline) for url in urls]


def fetch(url, policy=FetchPolicy(), resolver=socket.getaddrinfo,
          deadline=None):
    """Download ``url`` and return its body, refusing non-public hosts.

    The host is resolved once with ``resolver`` (same signature as
    ``socket.getaddrinfo``), every address must pass the policy, and the
    connection goes to the checked address itself.  Redirects are
    followed here, each target checked like the first URL.  The fetch
    ends by ``deadline``, shared with other fetches, or else within
    ``policy.total_timeout``.  DNS lookups are bounded by the system
    resolver's own timeouts, not by the deadline.

    Raise ``InvalidInput`` with code ``url_not_allowed`` for a refused URL
    or address, ``url_fetch_failed`` when the URL could not be fetched
    (no answer, timeout, status other than 2xx, too many redirects), and
    ``PayloadTooLarge`` with code ``image_too_large`` for a body over
    ``policy.max_bytes``.
    """
    if deadline is None:
        with Deadline(policy.total_timeout) as deadline:
            return _follow(url, policy, resolver, deadline)
    return _follow(url, policy, resolver, deadline)


def _follow(url, policy, resolver, deadline):
    """Fetch ``url``, following at most ``policy.max_redirects``."""
    for hop in range(policy.max_redirects + 1):
        deadline.check()
        checked, addresses = _check_hop(url, hop, policy, resolver)
        connection, response = transport.send_get(
            checked, addresses, policy, deadline)
        try:
            if response.status not in _REDIRECT_STATUSES:
                return transport.read_body(response, policy, deadline)
            location = response.headers.get("Location")
            if not location:
                raise fetch_failed(
                    f"the server answered {response.status} without "
                    "saying where to go")
            url = urljoin(url, location)
        finally:
            deadline.release(connection, response)
    raise fetch_failed(
        f"the URL redirected more than {policy.max_redirects} times")


def _check_hop(url, hop, policy, resolver):
    """Check one hop's URL and addresses, saying so if it was a redirect."""
    try:
        checked = check_url(url)
        addresses = resolve(checked, resolver)
        check_addresses(checked, addresses, policy)
    except InvalidInput as error:
        if hop == 0:
            raise
        raise InvalidInput(f"the URL redirected to a refused URL: "
                           f"{error.message}", code=error.code) from None
    return checked, addresses
