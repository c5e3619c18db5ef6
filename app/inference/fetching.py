"""Fetch a client-supplied image URL without letting it reach inside.

A URL chosen by a client is a server-side request forgery risk: on EC2,
``http://169.254.169.254/`` hands out the instance's credentials, and
loopback or private addresses reach services never meant to be public.
``fetch`` therefore

* accepts only ``http`` and ``https`` URLs without credentials,
* resolves the host once and refuses it unless every address it resolves
  to is public (``is_public_address``),
* connects to that checked address itself, so a second DNS answer cannot
  swap in another address (DNS rebinding), and sends the original name in
  the ``Host`` header and as the TLS server name (SNI and certificate
  check),
* follows redirects itself, checking every hop from scratch,
* bounds connect time, time between bytes, total time and body size.

It talks to urllib3 connections directly rather than through a pool or
``requests``: those would resolve the name again, retry, follow redirects
and honour ``HTTP_PROXY`` (a proxy does its own DNS lookup, behind the
check).
"""

import http.client
import ipaddress
import re
import socket
import threading
import time
from dataclasses import dataclass
from typing import Optional
from urllib.parse import quote, urljoin, urlsplit

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection

from app.errors import InvalidInput, PayloadTooLarge
from app.inference.addresses import (
    IPAddress, is_public_address, parse_ip_literal)
from app.inference.fetch_policy import FetchPolicy

_DEFAULT_PORTS = {"http": 80, "https": 443}
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK_BYTES = 65536

_DNS_NAME = re.compile(r"[a-z0-9_.-]+\Z")
_WHITESPACE_OR_CONTROL = re.compile(r"[\x00-\x20\x7f]")
# Characters left as they are when a path is put in the request line;
# everything else (non-ASCII, quotes, braces) is percent-encoded.
_PATH_SAFE = "!#$%&'()*+,/:;=?@[]~"


@dataclass(frozen=True)
class CheckedUrl:
    """The parts of a URL that ``check_url`` accepted."""

    scheme: str
    host: str
    port: int
    target: str
    address: Optional[IPAddress]

    @property
    def host_header(self):
        """Return the ``Host`` header value the server expects."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port == _DEFAULT_PORTS[self.scheme]:
            return host
        return f"{host}:{self.port}"


def check_url(url):
    """Check that ``url`` may be fetched and return its parts.

    Raise ``InvalidInput`` with code ``url_not_allowed`` unless the URL is
    http or https, has a host and a port in 1-65535, and carries no
    user name or password.
    """
    if not isinstance(url, str) or _WHITESPACE_OR_CONTROL.search(url):
        _refuse("the URL must be text without spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        _refuse("the URL is malformed or its port is not a valid number")
    if parts.scheme not in _DEFAULT_PORTS:
        _refuse("only http and https URLs can be fetched")
    if parts.username is not None or parts.password is not None:
        _refuse("URLs with a user name or password are refused: the "
                "credentials would be sent to the image host, and "
                "user@host is a common way to disguise the real host")
    if not parts.hostname:
        _refuse("the URL has no host")
    if port is None:
        port = _DEFAULT_PORTS[parts.scheme]
    elif not 1 <= port <= 65535:
        _refuse("the URL's port must be between 1 and 65535")
    address = parse_ip_literal(parts.hostname)
    if address is None:
        host = _ascii_host(parts.hostname)
    else:
        host = str(address)
    target = quote(parts.path or "/", safe=_PATH_SAFE)
    if parts.query:
        target += "?" + quote(parts.query, safe=_PATH_SAFE)
    return CheckedUrl(parts.scheme, host, port, target, address)


def _ascii_host(host):
    """Return ``host`` as the ASCII name DNS knows (IDNA)."""
    try:
        name = host.encode("idna").decode("ascii")
    except UnicodeError:
        _refuse("the URL's host is not a valid host name")
    if not _DNS_NAME.match(name):
        _refuse("the URL's host contains characters no host name has")
    return name


def fetch(url, policy=FetchPolicy(), resolver=socket.getaddrinfo):
    """Download ``url`` and return its body, refusing non-public hosts.

    The host is resolved once with ``resolver`` (same signature as
    ``socket.getaddrinfo``), every address must pass the policy, and the
    connection goes to the checked address itself.  Redirects are
    followed here, each target checked like the first URL.  DNS lookups
    are bounded by the system resolver's own timeouts, not by the policy.

    Raise ``InvalidInput`` with code ``url_not_allowed`` for a refused URL
    or address, ``url_fetch_failed`` when the URL could not be fetched
    (no answer, timeout, status other than 2xx, too many redirects), and
    ``PayloadTooLarge`` with code ``image_too_large`` for a body over
    ``policy.max_bytes``.
    """
    with _Deadline(policy.total_timeout) as deadline:
        for hop in range(policy.max_redirects + 1):
            checked, addresses = _check_hop(url, hop, policy, resolver)
            connection, response = _request(
                checked, addresses, policy, deadline)
            try:
                if response.status not in _REDIRECT_STATUSES:
                    return _read_body(response, policy, deadline)
                location = response.headers.get("Location")
                if not location:
                    raise _fetch_failed(
                        f"the server answered {response.status} without "
                        "saying where to go")
                url = urljoin(url, location)
            finally:
                deadline.release(connection, response)
    raise _fetch_failed(
        f"the URL redirected more than {policy.max_redirects} times")


def _check_hop(url, hop, policy, resolver):
    """Check one hop's URL and addresses, saying so if it was a redirect."""
    try:
        checked = check_url(url)
        addresses = _resolve(checked, resolver)
        _check_addresses(checked, addresses, policy)
    except InvalidInput as error:
        if hop == 0:
            raise
        raise InvalidInput(f"the URL redirected to a refused URL: "
                           f"{error.message}", code=error.code) from None
    return checked, addresses


def _resolve(checked, resolver):
    """Return every address of the URL's host, resolved exactly once."""
    if checked.address is not None:
        return [checked.address]
    try:
        answers = resolver(checked.host, checked.port,
                           type=socket.SOCK_STREAM)
        addresses = []
        for answer in answers:
            address = ipaddress.ip_address(answer[4][0])
            if address not in addresses:
                addresses.append(address)
    except (OSError, UnicodeError, ValueError) as error:
        raise _fetch_failed(
            f"the host {checked.host} could not be resolved") from error
    if not addresses:
        raise _fetch_failed(f"the host {checked.host} has no address")
    return addresses


def _check_addresses(checked, addresses, policy):
    """Refuse the URL unless the policy allows every one of its addresses.

    The addresses themselves stay out of the message, so that a client
    cannot map internal names by asking for them.
    """
    for address in addresses:
        if not _address_allowed(address, policy):
            _refuse(f"the host {checked.host} is, or resolves to, an "
                    "address that may not be fetched (loopback, private, "
                    "link-local or otherwise not public)")


def _address_allowed(address, policy):
    """Tell whether ``policy`` lets a fetch connect to ``address``."""
    if address.is_multicast or address.is_unspecified:
        return False
    if not policy.allow_private and not is_public_address(address):
        return False
    return policy.address_allowed is None or policy.address_allowed(address)


def _request(checked, addresses, policy, deadline):
    """Connect to the first checked address that answers and send a GET.

    Return the open connection, which the caller must release, and the
    response, whose body is not read yet.
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
        raise _fetch_failed(
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
        raise _fetch_failed(f"{checked.host} did not answer properly: "
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


def _read_body(response, policy, deadline):
    """Read a 2xx response's body, stopping one byte past the limit."""
    if not 200 <= response.status < 300:
        raise _fetch_failed(f"the server answered HTTP {response.status}")
    encoding = response.headers.get("Content-Encoding", "identity")
    if encoding.strip().lower() != "identity":
        # Decompressing would let a small body expand past the limit.
        raise _fetch_failed("compressed responses are not accepted")
    declared = response.headers.get("Content-Length", "")
    if declared.strip().isdigit() and int(declared) > policy.max_bytes:
        raise _too_large(policy)
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
        raise _fetch_failed("the download broke off: "
                            f"{deadline.explain(error)}") from error
    # A body that ends when the server closes looks complete when the
    # timer closed it instead.
    deadline.check()
    if received > policy.max_bytes:
        raise _too_large(policy)
    return b"".join(chunks)


def _too_large(policy):
    """Return the error for a body over the policy's byte limit."""
    return PayloadTooLarge(
        f"the image at the URL is larger than {policy.max_bytes} bytes",
        code="image_too_large")


class _Deadline:
    """Bound a whole fetch in time, whatever the server does.

    Socket timeouts bound each wait, not their sum: a server that sends a
    byte every few seconds never trips them.  So a timer shuts the
    current connection's socket down when the time is up, which ends any
    read blocked on it, in the TLS handshake, headers or body alike.
    """

    def __init__(self, seconds):
        """Start counting ``seconds`` from now."""
        self._seconds = seconds
        self._end = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._connection = None
        self._socket = None
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self.expired = False

    def __enter__(self):
        """Arm the timer."""
        self._timer.start()
        return self

    def __exit__(self, *exc_info):
        """Disarm the timer."""
        self._timer.cancel()

    def bound(self, timeout):
        """Return ``timeout`` cut down to the time left, or fail if none."""
        self.check()
        return min(timeout, max(self._end - time.monotonic(), 0.001))

    def check(self):
        """Fail if the time is up."""
        if self.expired or time.monotonic() >= self._end:
            raise _fetch_failed(self._message())

    def explain(self, error):
        """Say why a fetch broke, blaming the deadline if it had passed."""
        if self.expired or time.monotonic() >= self._end:
            return self._message()
        if isinstance(error, (TimeoutError,
                              urllib3.exceptions.TimeoutError)):
            return "timed out"
        return type(error).__name__

    def watch(self, connection):
        """Make ``connection`` the one to cut when the time is up."""
        with self._lock:
            self._connection = connection
            self._socket = None
        self.check()

    def connected(self, connection):
        """Keep hold of the socket ``connection`` has just opened.

        http.client forgets it as soon as a response says the connection
        will close, but the response goes on reading from it.
        """
        with self._lock:
            self._socket = connection.sock

    def release(self, connection, response=None):
        """Close a connection and response the timer must not touch."""
        with self._lock:
            if self._connection is connection:
                self._connection = None
                self._socket = None
            if response is not None:
                response.close()
            connection.close()

    def _expire(self):
        """Shut the watched socket down so that blocked reads end now."""
        with self._lock:
            self.expired = True
            sock = self._socket
            if sock is None and self._connection is not None:
                # Still in the TLS handshake: the plain TCP socket.
                sock = self._connection.sock
            if sock is None:
                return
            try:
                # The plain socket method: an SSL socket's own shutdown
                # would tear down TLS state another thread is using.
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except OSError:
                pass

    def _message(self):
        """Describe a fetch that ran out of time."""
        return f"the fetch took longer than {self._seconds} seconds"


def _refuse(reason):
    """Raise the error for a URL that may not be fetched."""
    raise InvalidInput(reason, code="url_not_allowed")


def _fetch_failed(reason):
    """Return the error for a URL that could not be fetched."""
    return InvalidInput(reason, code="url_fetch_failed")
