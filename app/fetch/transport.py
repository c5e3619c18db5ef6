"""Send one GET to a checked address and read its body within the limits.

It talks to urllib3 connections directly rather than through a pool or
``requests``: those would resolve the name again, retry, follow redirects
and honour ``HTTP_PROXY`` (a proxy does its own DNS lookup, behind the
check).  The connection goes to the checked address itself; the name goes
in the ``Host`` header and is the TLS server name (SNI and certificate
check).
"""

import http.client

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection

from app.fetch.errors import fetch_failed, too_large

_CHUNK_BYTES = 65536


def send_get(checked, addresses, policy, deadline):
    """Connect to the first checked address that answers and send a GET.

    Return the open connection, which the caller must release through
    ``deadline``, and the response, whose body is not read yet.
    """
    failure = None
    for address in addresses:
        connection = _connection(checked, address,
                                 deadline.bound(policy.connect_timeout))
        deadline.watch(connection)
        try:
            connection.connect()
            deadline.connected(connection)
            break
        except (OSError, urllib3.exceptions.HTTPError) as error:
            deadline.release(connection)
            failure = error
    else:
        raise fetch_failed(
            f"could not connect to {checked.host}: "
            f"{deadline.explain(failure)}") from failure
    try:
        connection.timeout = deadline.bound(policy.read_timeout)
        connection.request(
            "GET", checked.target, preload_content=False,
            decode_content=False,
            headers={"Host": checked.host_header,
                     "Accept-Encoding": "identity",
                     "Accept": "image/*"})
        return connection, connection.getresponse()
    except (OSError, http.client.HTTPException,
            urllib3.exceptions.HTTPError) as error:
        deadline.release(connection)
        raise fetch_failed(f"{checked.host} did not answer properly: "
                           f"{deadline.explain(error)}") from error


def _connection(checked, address, connect_timeout):
    """Build an unconnected connection to the checked ``address``."""
    if checked.scheme == "http":
        return HTTPConnection(str(address), checked.port,
                              timeout=connect_timeout)
    # The name, not the address, is what the certificate must cover.
    return HTTPSConnection(str(address), checked.port,
                           timeout=connect_timeout,
                           server_hostname=checked.host,
                           cert_reqs="CERT_REQUIRED")


def read_body(response, policy, deadline):
    """Read a 2xx response's body, stopping one byte past the limit."""
    if not 200 <= response.status < 300:
        raise fetch_failed(f"the server answered HTTP {response.status}")
    encoding = response.headers.get("Content-Encoding", "identity")
    if encoding.strip().lower() != "identity":
        # Decompressing would let a small body expand past the limit.
        raise fetch_failed("compressed responses are not accepted")
    declared = response.headers.get("Content-Length", "")
    if declared.strip().isdigit() and int(declared) > policy.max_bytes:
        raise too_large(policy)
    chunks = []
    received = 0
    try:
        while received <= policy.max_bytes:
            wanted = min(_CHUNK_BYTES, policy.max_bytes + 1 - received)
            chunk = response.read(wanted)
            if not chunk:
                break
            chunks.append(chunk)
            received += len(chunk)
            deadline.check()
    except (OSError, http.client.HTTPException,
            urllib3.exceptions.HTTPError) as error:
        raise fetch_failed("the download broke off: "
                           f"{deadline.explain(error)}") from error
    # A body that ends when the server closes looks complete when the
    # timer closed it instead.
    deadline.check()
    if received > policy.max_bytes:
        raise too_large(policy)
    return b"".join(chunks)
