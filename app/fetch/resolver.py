"""Resolve a checked URL's host once and hold every address to the policy.

The addresses returned here are the only ones a fetch connects to: a
second lookup could answer differently (DNS rebinding).
"""

import ipaddress
import socket

from app.fetch.addresses import is_public_address
from app.fetch.errors import fetch_failed, refuse


def resolve(checked, resolver=socket.getaddrinfo):
    """Return every address of the URL's host, resolved exactly once.

    An IP address in the URL is its own answer: ``resolver`` (same
    signature as ``socket.getaddrinfo``) is only asked about names.
    """
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
        raise fetch_failed(
            f"the host {checked.host} could not be resolved") from error
    if not addresses:
        raise fetch_failed(f"the host {checked.host} has no address")
    return addresses


def check_addresses(checked, addresses, policy):
    """Refuse the URL unless the policy allows every one of its addresses.

    The addresses themselves stay out of the message, so that a client
    cannot map internal names by asking for them.
    """
    for address in addresses:
        if not address_allowed(address, policy):
            refuse(f"the host {checked.host} is, or resolves to, an "
                   "address that may not be fetched (loopback, private, "
                   "link-local or otherwise not public)")


def address_allowed(address, policy):
    """Tell whether ``policy`` lets a fetch connect to ``address``."""
    if address.is_multicast or address.is_unspecified:
        return False
    if not policy.allow_private and not is_public_address(address):
        return False
    return policy.address_allowed is None or policy.address_allowed(address)
