"""Decide which URLs may be fetched and put their host in canonical form.

Pure functions, no I/O.  Every spelling of an IP address is read as that
address here, before and after IDNA mapping, so that the address rules
judge it without any DNS lookup: ``127.0.0.1.``, ``0x7f000001``,
``１２７．０．０．１`` and ``[::ffff:7f00:1]`` all become 127.0.0.1.
"""

import re
from dataclasses import dataclass
from typing import Optional
from urllib.parse import quote, urlsplit

from app.fetch.addresses import IPAddress, looks_numeric, parse_ip_literal
from app.fetch.errors import refuse

DEFAULT_PORTS = {"http": 80, "https": 443}

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
        if self.port == DEFAULT_PORTS[self.scheme]:
            return host
        return f"{host}:{self.port}"


def check_url(url):
    """Check that ``url`` may be fetched and return its parts.

    Raise ``InvalidInput`` with code ``url_not_allowed`` unless the URL is
    http or https, has a host and a port in 1-65535, and carries no
    user name or password.
    """
    if not isinstance(url, str) or _WHITESPACE_OR_CONTROL.search(url):
        refuse("the URL must be text without spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        refuse("the URL is malformed or its port is not a valid number")
    if parts.scheme not in DEFAULT_PORTS:
        refuse("only http and https URLs can be fetched")
    if parts.username is not None or parts.password is not None:
        refuse("URLs with a user name or password are refused: the "
               "credentials would be sent to the image host, and "
               "user@host is a common way to disguise the real host")
    if not parts.hostname:
        refuse("the URL has no host")
    if port is None:
        port = DEFAULT_PORTS[parts.scheme]
    elif not 1 <= port <= 65535:
        refuse("the URL's port must be between 1 and 65535")
    host, address = canonical_host(
        parts.hostname, bracketed=parts.netloc.startswith("["))
    target = quote(parts.path or "/", safe=_PATH_SAFE)
    if parts.query:
        target += "?" + quote(parts.query, safe=_PATH_SAFE)
    return CheckedUrl(parts.scheme, host, port, target, address)


def canonical_host(hostname, bracketed=False):
    """Return ``(host, address)``: the ASCII host and the address it spells.

    ``address`` is None for a name, which DNS has to resolve.  A host in
    brackets must be an IPv6 address, and a host that ends in a number
    must be a valid IPv4 address, or the URL is refused.
    """
    address = parse_ip_literal(hostname)
    if address is None:
        hostname = _idna(hostname)
        # IDNA maps fullwidth digits and ideographic dots to ASCII, so
        # the mapped name may spell an address the original did not.
        address = parse_ip_literal(hostname)
    if bracketed and (address is None or address.version != 6):
        refuse("only an IPv6 address may stand in brackets in a URL")
    if address is None:
        if looks_numeric(hostname):
            refuse("the URL's host looks like an IP address but is not "
                   "a valid one")
        return hostname, None
    if address.version == 6 and address.scope_id:
        # A zone picks a local network interface: never a public host.
        refuse("IPv6 addresses with a zone are refused")
    return str(address), address


def _idna(host):
    """Return ``host`` as the ASCII name DNS knows (IDNA)."""
    try:
        name = host.encode("idna").decode("ascii")
    except UnicodeError:
        refuse("the URL's host is not a valid host name")
    if not _DNS_NAME.match(name):
        refuse("the URL's host contains characters no host name has")
    return name
