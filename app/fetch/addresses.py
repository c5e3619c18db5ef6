"""Tell public addresses from internal ones, however they are spelt.

Pure functions, no I/O: what an address is, and which address a host
string spells. The URL fetcher refuses every address these call
non-public; the tests exercise every range here without sending a packet.
"""

import ipaddress
import re
import socket
from typing import Union

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

# IPv4 ranges that are never a public destination (IANA special-purpose
# address registry).  ``is_global`` knows most of them, but its table
# changes between Python releases and it calls multicast global, so the
# ranges are spelled out here too.
_NON_PUBLIC_V4 = tuple(ipaddress.IPv4Network(network) for network in (
    "0.0.0.0/8",        # "this network"; 0.0.0.0 reaches the local host
    "10.0.0.0/8",       # private
    "100.64.0.0/10",    # shared address space (carrier-grade NAT)
    "127.0.0.0/8",      # loopback
    "169.254.0.0/16",   # link-local, home of the EC2 metadata service
    "172.16.0.0/12",    # private
    "192.0.0.0/24",     # IETF protocol assignments
    "192.0.2.0/24",     # documentation (TEST-NET-1)
    "192.88.99.0/24",   # deprecated 6to4 relay anycast
    "192.168.0.0/16",   # private
    "198.18.0.0/15",    # benchmarking
    "198.51.100.0/24",  # documentation (TEST-NET-2)
    "203.0.113.0/24",   # documentation (TEST-NET-3)
    "224.0.0.0/4",      # multicast
    "240.0.0.0/4",      # reserved, and the broadcast 255.255.255.255
))

# Only 2000::/3 is allocated for global unicast, so requiring it refuses
# at once ::/128, ::1, IPv4-mapped ::ffff:0:0/96, IPv4-compatible ::/96,
# local NAT64 64:ff9b:1::/48, discard 100::/64, unique local fc00::/7
# (EC2 serves its metadata on fd00:ec2::254 too), link-local fe80::/10,
# site-local fec0::/10 and multicast ff00::/8.
_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")
# A well-known NAT64 address is translated to the IPv4 address in its
# last 32 bits, so it is exactly as public as that address.
_NAT64_V6 = ipaddress.IPv6Network("64:ff9b::/96")
_NON_PUBLIC_V6 = tuple(ipaddress.IPv6Network(network) for network in (
    "2001::/23",      # IETF protocol assignments, including Teredo
    "2001:db8::/32",  # documentation
    "2002::/16",      # 6to4: reaches its embedded IPv4 through a relay
    "3fff::/20",      # documentation
    "5f00::/16",      # segment routing identifiers, not routable
))

# Legacy IPv4 spellings (2130706433, 0x7f000001, 0177.0.0.1, 127.1) are
# numbers and dots only; anything else must not reach inet_aton, which
# ignores whatever follows a space.
_LEGACY_IPV4 = re.compile(r"[0-9][0-9a-fA-FxX.]*\Z")
# A last label that is a decimal or hexadecimal number makes a host an
# IPv4 address to URL parsers (WHATWG), never a name: no top-level domain
# is numeric.
_NUMERIC_LABEL = re.compile(r"(?:[0-9]+|0[xX][0-9a-fA-F]*)\Z")


def is_public_address(ip):
    """Tell whether ``ip`` is a globally routable unicast address.

    Loopback, private, link-local, shared (CGNAT), benchmarking,
    documentation, reserved, multicast, broadcast and unspecified
    addresses are refused, and so is every IPv6 address outside 2000::/3
    (IPv4-mapped and IPv4-compatible ones included), 6to4 and Teredo
    addresses, and a NAT64 address whose embedded IPv4 is not public.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        return _is_public_v6(ip)
    return _is_public_v4(ip)


def _is_public_v4(ip):
    """Tell whether the IPv4 address ``ip`` is public."""
    if any(ip in network for network in _NON_PUBLIC_V4):
        return False
    return ip.is_global and not ip.is_multicast


def _is_public_v6(ip):
    """Tell whether the IPv6 address ``ip`` is public."""
    if ip.ipv4_mapped is not None:
        return False
    if ip in _NAT64_V6:
        return _is_public_v4(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip not in _GLOBAL_UNICAST_V6:
        return False
    if any(ip in network for network in _NON_PUBLIC_V6):
        return False
    if ip.sixtofour is not None or ip.teredo is not None:
        return False
    return ip.is_global and not ip.is_multicast


def parse_ip_literal(host):
    """Return the address that ``host`` spells, or None for a name.

    Accepts every spelling a resolver or URL parser would take as an
    address: IPv6 with or without brackets (``::ffff:127.0.0.1`` stays
    IPv6), dotted IPv4, and the legacy IPv4 forms of ``inet_aton``: one
    to four parts, each decimal, octal (leading 0) or hexadecimal (0x),
    with or without trailing dots (``127.1.`` is 127.0.0.1).  Only ASCII
    is read here: map a Unicode host to ASCII (IDNA) first.
    """
    if host.startswith("[") and host.endswith("]"):
        try:
            return ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return None
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    # The dot of the DNS root is no part of the address, but inet_aton
    # refuses it.
    ipv4 = host.rstrip(".")
    if not _LEGACY_IPV4.match(ipv4):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(ipv4))
    except OSError:
        return None


def looks_numeric(host):
    """Tell whether ``host`` ends in a number, as only an address does.

    Such a host that ``parse_ip_literal`` cannot read (``1.2.3.4.5``,
    ``4294967296``, ``127.0.0.08``) is a malformed address, not a name.
    """
    labels = host.rstrip(".").rsplit(".", 1)
    return bool(_NUMERIC_LABEL.match(labels[-1]))
