"""Tests of the safe URL fetcher: address rules, URL checks, real fetches.

Network traffic stays on loopback: private and link-local ranges are
tested through the pure functions only, and every URL that reaches a real
fetch spells a loopback address, so that a broken guard can reach nothing
but a canary server of this module.
"""

import ipaddress
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

import pytest

from app.errors import InvalidInput, PayloadTooLarge
from app.fetch import transport
from app.fetch.addresses import is_public_address, parse_ip_literal
from app.fetch.client import fetch, fetch_all
from app.fetch.deadline import Deadline
from app.fetch.policy import FetchPolicy
from app.fetch.urls import check_url
from app.settings import PROJECT_ROOT
from tests.canary import (
    BODY, Canary, drip_body, drip_headers, redirect, send_after, send_body)

SECONDS_PER_TEST = 10
LOOPBACK = ipaddress.ip_address("127.0.0.1")


def only_loopback_one(address):
    """Allow 127.0.0.1 and nothing else."""
    return address == LOOPBACK


LOCAL_POLICY = FetchPolicy(
    allow_private=True, address_allowed=only_loopback_one,
    connect_timeout=1.0, read_timeout=1.0, total_timeout=3.0)


@pytest.fixture(autouse=True)
def time_limit():
    """Fail any test still running after SECONDS_PER_TEST seconds."""
    def give_up(signum, frame):
        pytest.fail(f"test ran longer than {SECONDS_PER_TEST} s")

    previous = signal.signal(signal.SIGALRM, give_up)
    signal.setitimer(signal.ITIMER_REAL, SECONDS_PER_TEST)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


# --- pure functions -------------------------------------------------------

PUBLIC = [
    "8.8.8.8", "1.1.1.1", "93.184.215.14", "2606:4700::1111",
    "2001:4860:4860::8888", "64:ff9b::808:808",
]
NOT_PUBLIC = [
    "127.0.0.1", "127.255.255.254",                    # loopback
    "10.0.0.1", "172.16.0.1", "172.31.255.254",        # private
    "192.168.1.1",
    "169.254.169.254", "169.254.0.1",                  # link-local
    "100.64.0.1", "100.127.255.254",                   # shared (CGNAT)
    "198.18.0.1", "198.19.255.254",                    # benchmarking
    "192.0.2.1", "198.51.100.1", "203.0.113.1",        # documentation
    "0.0.0.0", "0.1.2.3",                              # this network
    "192.0.0.8", "192.88.99.1",                        # IETF, 6to4 relay
    "224.0.0.1", "239.255.255.250",                    # multicast
    "240.0.0.1", "255.255.255.255",                    # reserved, bcast
    "::", "::1",                                       # unspecified, lo
    "fc00::1", "fd00:ec2::254",                        # unique local
    "fe80::1", "fec0::1",                              # link/site-local
    "ff02::1", "ff0e::1",                              # multicast
    "2001:db8::1", "3fff::1",                          # documentation
    "100::1",                                          # discard
    "::ffff:127.0.0.1", "::ffff:169.254.169.254",      # IPv4-mapped
    "::ffff:8.8.8.8",                                  # every mapped one
    "::127.0.0.1", "::8.8.8.8",                        # IPv4-compatible
    "2002:7f00:1::1", "2002:a9fe:a9fe::1",             # 6to4
    "2002:808:808::1",
    "2001:0:4136:e378:8000:63bf:80ff:fffe",            # Teredo
    "2001:2::1",                                       # benchmarking
    "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe",           # NAT64 of private
    "64:ff9b::a00:1", "64:ff9b:1::a9fe:a9fe",          # and local NAT64
    "5f00::1",                                         # SRv6
]


@pytest.mark.parametrize("text", PUBLIC)
def test_public_addresses_are_public(text):
    """Accept globally routable unicast addresses."""
    assert is_public_address(ipaddress.ip_address(text)) is True


@pytest.mark.parametrize("text", NOT_PUBLIC)
def test_non_public_addresses_are_refused(text):
    """Refuse every special-purpose range, IPv4 and IPv6."""
    assert is_public_address(ipaddress.ip_address(text)) is False


@pytest.mark.parametrize("spelling", [
    "127.0.0.1", "2130706433", "0x7f000001", "0X7F000001", "0177.0.0.1",
    "0177.0.0.01", "0x7f.0.0.1", "0x7f.1", "127.1", "127.0.1",
    "017700000001",
])
def test_every_spelling_of_loopback_parses(spelling):
    """Read every resolver spelling of 127.0.0.1 as 127.0.0.1."""
    assert parse_ip_literal(spelling) == LOOPBACK


@pytest.mark.parametrize("spelling", [
    "127.0.0.1.", "127.0.0.1..", "127.1.", "0x7f000001.", "2130706433.",
    "0177.0.0.1.", "0x7f.1.",
])
def test_trailing_dots_do_not_hide_an_address(spelling):
    """Read an IPv4 literal with the DNS root's dot as that address."""
    assert parse_ip_literal(spelling) == LOOPBACK


@pytest.mark.parametrize("spelling", [
    "169.254.169.254", "2852039166", "0xa9fea9fe", "0xa9.0xfe.0xa9.0xfe",
    "0251.0376.0251.0376", "169.254.43518",
])
def test_metadata_address_spellings_parse(spelling):
    """Read the metadata address in every spelling (parse only)."""
    assert parse_ip_literal(spelling) == ipaddress.ip_address(
        "169.254.169.254")


@pytest.mark.parametrize("spelling, expected", [
    ("2851995905", "169.254.1.1"), ("3232235777", "192.168.1.1"),
    ("0xa000001", "10.0.0.1"), ("0254.0020.1", "172.16.0.1"),
    ("[::1]", "::1"), ("::1", "::1"),
    ("::ffff:127.0.0.1", "::ffff:127.0.0.1"),
    ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1"),
    ("[::ffff:7f00:1]", "::ffff:127.0.0.1"),
    ("2606:4700::1111", "2606:4700::1111"),
])
def test_other_literals_parse(spelling, expected):
    """Read numeric IPv4 spellings and IPv6 with or without brackets."""
    assert parse_ip_literal(spelling) == ipaddress.ip_address(expected)


@pytest.mark.parametrize("host", [
    "localhost", "images.example", "example.com", "", "1.2.3.4.5",
    "127.0.0.1 extra", "0x", "4294967296", "[127.0.0.1]", "[nonsense]",
    "deadbeef", "1e100.net",
])
def test_names_are_not_literals(host):
    """Leave names and malformed numbers to the resolver."""
    assert parse_ip_literal(host) is None


@pytest.mark.parametrize("url, scheme, host, port, target", [
    ("http://Images.Example/a.png", "http", "images.example", 80,
     "/a.png"),
    ("https://images.example:8443/a%20b?x=1", "https", "images.example",
     8443, "/a%20b?x=1"),
    ("http://2130706433/", "http", "127.0.0.1", 80, "/"),
    ("http://[::1]:81", "http", "::1", 81, "/"),
    ("http://bücher.example/x?q=1#frag", "http", "xn--bcher-kva.example",
     80, "/x?q=1"),
])
def test_check_url_returns_the_parts(url, scheme, host, port, target):
    """Split an acceptable URL into what the request needs."""
    checked = check_url(url)
    assert (checked.scheme, checked.host, checked.port) == (
        scheme, host, port)
    assert checked.target == target


def test_check_url_encodes_non_ascii_paths():
    """Percent-encode non-ASCII so the request line stays ASCII."""
    assert check_url("http://a.example/ü?x=é").target == (
        "/%C3%BC?x=%C3%A9")


@pytest.mark.parametrize("url, reason", [
    ("ftp://127.0.0.1/a.png", "http and https"),
    ("file:///etc/passwd", "http and https"),
    ("gopher://127.0.0.1:70/", "http and https"),
    ("http:///a.png", "no host"),
    ("http://", "no host"),
    ("http://user:secret@127.0.0.1/", "user name or password"),
    ("http://user@127.0.0.1/", "user name or password"),
    ("http://@127.0.0.1/", "user name or password"),
    ("http://8.8.8.8\\@127.0.0.1/", "user name or password"),
    ("http://127.0.0.1:0/", "port"),
    ("http://127.0.0.1:65536/", "port"),
    ("http://127.0.0.1:http/", "port"),
    ("http://127.0.0.1/\r\nX-Injected: 1", "control"),
    ("http://127.0.0.1 /", "spaces"),
    ("http://exa<mple.com/", "characters"),
    (None, "text"),
])
def test_check_url_refuses(url, reason):
    """Refuse bad schemes, missing hosts, credentials and bad ports."""
    with pytest.raises(InvalidInput) as caught:
        check_url(url)
    assert caught.value.code == "url_not_allowed"
    assert reason in caught.value.message


# Every way a URL can spell an address, with the address it spells.  The
# URL checker must read each as that address, with no DNS lookup, and
# the default policy must refuse it.
ADDRESS_SPELLINGS = [
    ("127.0.0.1.", "127.0.0.1"),
    ("127.0.0.1..", "127.0.0.1"),
    ("127.1.", "127.0.0.1"),
    ("0x7f000001.", "127.0.0.1"),
    ("0X7F000001.", "127.0.0.1"),
    ("2130706433.", "127.0.0.1"),
    ("0177.0.0.1.", "127.0.0.1"),
    ("\uff11\uff12\uff17\uff0e\uff10\uff0e\uff10\uff0e\uff11",
     "127.0.0.1"),                                 # fullwidth digits, dots
    ("127\u30020\u30020\u30021", "127.0.0.1"),     # ideographic full stop
    ("127\uff610\uff610\uff611", "127.0.0.1"),     # halfwidth full stop
    ("127.0.0.1\u3002", "127.0.0.1"),               # ... as the root's dot
    ("\uff10\uff58\uff17\uff46\uff10\uff10\uff10\uff10\uff10\uff11",
     "127.0.0.1"),                                 # fullwidth 0x7f000001
    ("\u2460\u2461\u2466.\u24ea.\u24ea.\u2460",
     "127.0.0.1"),                                 # circled digits
    ("169.254.169.254.", "169.254.169.254"),
    ("2852039166.", "169.254.169.254"),
    ("\uff12\uff18\uff15\uff12\uff10\uff13\uff19\uff11\uff16\uff16",
     "169.254.169.254"),                           # fullwidth decimal
    ("10.0.0.1.", "10.0.0.1"),
    ("0", "0.0.0.0"),
    ("0.0.0.0.", "0.0.0.0"),
    ("[::1]", "::1"),
    ("[0:0:0:0:0:0:0:1]", "::1"),
    ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1"),
    ("[::ffff:7f00:1]", "::ffff:127.0.0.1"),
    ("[::FFFF:A9FE:A9FE]", "::ffff:169.254.169.254"),
    ("[::127.0.0.1]", "::127.0.0.1"),
    ("[64:ff9b::a9fe:a9fe]", "64:ff9b::169.254.169.254"),
    ("[fd00:ec2::254]", "fd00:ec2::254"),
    ("[fe80::1]", "fe80::1"),
]


def resolver_failing_the_test(host, *args, **kwargs):
    """Stand in for DNS where no lookup may happen."""
    pytest.fail(f"{host!r} was sent to the resolver")


@pytest.mark.parametrize("spelling, expected", ADDRESS_SPELLINGS)
def test_check_url_reads_every_address_spelling(spelling, expected):
    """Read each spelling as its address, canonical in host and Host."""
    checked = check_url(f"http://{spelling}:8080/x")
    address = ipaddress.ip_address(expected)
    assert checked.address == address
    assert checked.host == str(address)
    assert checked.host_header.startswith(
        f"[{address}]" if address.version == 6 else str(address))


@pytest.mark.parametrize("spelling, expected", ADDRESS_SPELLINGS)
def test_address_spellings_are_refused_without_a_lookup(
        no_connections, spelling, expected):
    """Refuse each spelling as a non-public address, resolving nothing."""
    assert not is_public_address(ipaddress.ip_address(expected))
    with pytest.raises(InvalidInput) as caught:
        fetch(f"http://{spelling}:8080/x", FetchPolicy(),
              resolver_failing_the_test)
    assert caught.value.code == "url_not_allowed"
    assert "may not be fetched" in caught.value.message
    assert no_connections == []


@pytest.mark.parametrize("url, reason", [
    ("http://1.2.3.4.5/", "not a valid one"),
    ("http://4294967296/", "not a valid one"),
    ("http://127.0.0.08/", "not a valid one"),
    ("http://0x/", "not a valid one"),
    ("http://images.0x1f/", "not a valid one"),
    ("http://\u0661\u0662\u0667.0.0.1/", "not a valid one"),
    ("http://[v1.fe]/", "brackets"),
    ("http://[fe80::1%25eth0]/", "zone"),
])
def test_malformed_addresses_are_refused_without_a_lookup(
        no_connections, url, reason):
    """Refuse a host that is neither a valid address nor a name."""
    with pytest.raises(InvalidInput) as caught:
        fetch(url, LOCAL_POLICY, resolver_failing_the_test)
    assert caught.value.code == "url_not_allowed"
    assert reason in caught.value.message
    assert no_connections == []


@pytest.fixture
def canary():
    """Serve on 127.0.0.1, the one address the local policy allows."""
    server = Canary("127.0.0.1")
    yield server
    server.close()


@pytest.fixture
def other_canary():
    """Serve on 127.0.0.2, an address the local policy does not allow."""
    server = Canary("127.0.0.2")
    yield server
    server.close()


@pytest.fixture
def ipv6_canary():
    """Serve on ::1, or skip where IPv6 loopback is missing."""
    try:
        server = Canary("::1", family=socket.AF_INET6)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    yield server
    server.close()


@pytest.fixture
def no_connections(monkeypatch):
    """Replace the connection classes so that any connection is recorded."""
    attempts = []

    def record(*args, **kwargs):
        attempts.append(args)
        raise AssertionError("a refused URL must not be connected to")

    monkeypatch.setattr(transport, "HTTPConnection", record)
    monkeypatch.setattr(transport, "HTTPSConnection", record)
    return attempts


def resolver_returning(*addresses):
    """Return a resolver stub answering ``addresses`` and recording calls."""
    def resolve(host, port, *args, **kwargs):
        resolve.calls.append(host)
        return [(socket.AF_INET6 if ":" in address else socket.AF_INET,
                 socket.SOCK_STREAM, 6, "", (address, port))
                for address in addresses]
    resolve.calls = []
    return resolve


# --- refused before any connection ----------------------------------------

@pytest.mark.parametrize("spelling", [
    "127.0.0.1", "2130706433", "0x7f000001", "0177.0.0.1", "127.1",
    "localhost", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "0.0.0.0",
])
def test_default_policy_refuses_loopback_spellings(canary, spelling):
    """Refuse loopback in every spelling before connecting."""
    with pytest.raises(InvalidInput) as caught:
        fetch(f"http://{spelling}:{canary.port}/")
    assert caught.value.code == "url_not_allowed"
    assert canary.connections == 0
    assert canary.requests == []


def test_default_policy_refuses_ipv6_loopback(ipv6_canary):
    """Refuse [::1] before connecting."""
    with pytest.raises(InvalidInput) as caught:
        fetch(f"http://[::1]:{ipv6_canary.port}/")
    assert caught.value.code == "url_not_allowed"
    assert ipv6_canary.connections == 0


@pytest.mark.parametrize("answers", [
    ("8.8.8.8", "127.0.0.1"), ("127.0.0.1", "8.8.8.8"),
    ("2606:4700::1111", "169.254.169.254"),
])
def test_one_bad_address_among_good_ones_is_refused(no_connections,
                                                    answers):
    """Refuse a name if any one of its addresses is refused."""
    resolver = resolver_returning(*answers)
    with pytest.raises(InvalidInput) as caught:
        fetch("http://images.example/", resolver=resolver)
    assert caught.value.code == "url_not_allowed"
    assert "127.0.0.1" not in caught.value.message
    assert resolver.calls == ["images.example"]
    assert no_connections == []


@pytest.mark.parametrize("url", [
    "ftp://127.0.0.1:{port}/", "file:///etc/passwd", "http:///{port}",
    "http://user:pw@127.0.0.1:{port}/", "http://user@localhost:{port}/",
])
def test_refused_urls_are_neither_resolved_nor_connected(
        canary, no_connections, url):
    """Refuse bad URLs before any DNS lookup or connection."""
    resolver = resolver_returning("127.0.0.1")
    with pytest.raises(InvalidInput) as caught:
        fetch(url.format(port=canary.port), LOCAL_POLICY, resolver)
    assert caught.value.code == "url_not_allowed"
    assert resolver.calls == []
    assert no_connections == []
    assert canary.connections == 0


# --- fetches under a policy that allows 127.0.0.1 only ---------------------

def test_fetch_returns_the_exact_body(canary):
    """Return the body byte for byte."""
    assert fetch(f"http://127.0.0.1:{canary.port}/", LOCAL_POLICY) == BODY
    assert canary.requests == [("/", f"127.0.0.1:{canary.port}")]


def test_body_without_length_is_read_to_the_end(canary):
    """Read a body that ends when the server closes."""
    canary.routes["/"] = send_body(BODY * 1000, declare_length=False)
    assert fetch(f"http://127.0.0.1:{canary.port}/",
                 LOCAL_POLICY) == BODY * 1000


def test_address_allowed_narrows_the_policy(other_canary):
    """Refuse 127.0.0.2 when only 127.0.0.1 is allowed."""
    with pytest.raises(InvalidInput) as caught:
        fetch(f"http://127.0.0.2:{other_canary.port}/", LOCAL_POLICY)
    assert caught.value.code == "url_not_allowed"
    assert other_canary.connections == 0


def test_redirect_to_a_refused_address_is_not_followed(canary,
                                                       other_canary):
    """Check a redirect's target address before connecting to it."""
    canary.routes["/"] = redirect(f"http://127.0.0.2:{other_canary.port}/")
    with pytest.raises(InvalidInput) as caught:
        fetch(f"http://127.0.0.1:{canary.port}/", LOCAL_POLICY)
    assert caught.value.code == "url_not_allowed"
    assert "redirected" in caught.value.message
    assert len(canary.requests) == 1
    assert other_canary.connections == 0


@pytest.mark.parametrize("location", [
    "file:///etc/passwd", "ftp://127.0.0.1/", "http://u:p@127.0.0.1/"])
def test_redirect_to_a_refused_url_is_not_followed(canary, location):
    """Check a redirect's URL like the first one."""
    canary.routes["/"] = redirect(location)
    with pytest.raises(InvalidInput) as caught:
        fetch(f"http://127.0.0.1:{canary.port}/", LOCAL_POLICY)
    assert caught.value.code == "url_not_allowed"


def chain(canary, hops):
    """Make /chain/N redirect to /chain/N-1 ... /chain/0, which answers."""
    canary.routes["/chain/0"] = send_body(BODY)
    for hop in range(1, hops + 1):
        canary.routes[f"/chain/{hop}"] = redirect(f"/chain/{hop - 1}")
    return f"http://127.0.0.1:{canary.port}/chain/{hops}"


def test_redirects_up_to_the_limit_are_followed(canary):
    """Follow exactly max_redirects redirects."""
    url = chain(canary, LOCAL_POLICY.max_redirects)
    assert fetch(url, LOCAL_POLICY) == BODY
    assert len(canary.requests) == LOCAL_POLICY.max_redirects + 1


def test_redirects_past_the_limit_fail(canary):
    """Fail on one redirect more than max_redirects."""
    url = chain(canary, LOCAL_POLICY.max_redirects + 1)
    with pytest.raises(InvalidInput) as caught:
        fetch(url, LOCAL_POLICY)
    assert caught.value.code == "url_fetch_failed"
    assert len(canary.requests) == LOCAL_POLICY.max_redirects + 1


def test_redirect_loop_fails(canary):
    """Stop a redirect loop."""
    canary.routes["/"] = redirect("/")
    with pytest.raises(InvalidInput) as caught:
        fetch(f"http://127.0.0.1:{canary.port}/", LOCAL_POLICY)
    assert caught.value.code == "url_fetch_failed"


@pytest.mark.parametrize("declare_length", [True, False])
def test_body_over_the_limit_is_too_large(canary, declare_length):
    """Refuse a body one byte over the limit."""
    policy = FetchPolicy(allow_private=True, max_bytes=len(BODY) - 1,
                         address_allowed=only_loopback_one)
    canary.routes["/"] = send_body(BODY, declare_length)
    with pytest.raises(PayloadTooLarge) as caught:
        fetch(f"http://127.0.0.1:{canary.port}/", policy)
    assert caught.value.code == "image_too_large"


def test_announced_oversize_is_refused_before_reading(canary):
    """Refuse on Content-Length alone, before reading any of the body."""
    def announce_a_terabyte(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", str(10 ** 12))
        handler.end_headers()
        handler.wfile.write(BODY)

    canary.routes["/"] = announce_a_terabyte
    with pytest.raises(PayloadTooLarge) as caught:
        fetch(f"http://127.0.0.1:{canary.port}/", LOCAL_POLICY)
    assert caught.value.code == "image_too_large"


def test_body_exactly_at_the_limit_is_accepted(canary):
    """Accept a body exactly at the limit."""
    policy = FetchPolicy(allow_private=True, max_bytes=len(BODY),
                         address_allowed=only_loopback_one)
    canary.routes["/"] = send_body(BODY, declare_length=False)
    assert fetch(f"http://127.0.0.1:{canary.port}/", policy) == BODY


def test_endless_body_stops_just_past_the_limit(canary, monkeypatch):
    """Read no more than max_bytes + 1 of an endless body."""
    sizes = []
    real_read_body = transport.read_body

    def measured(response, policy, deadline):
        original_read = response.read
        response.read = lambda amount: sizes.append(amount) or (
            original_read(amount))
        return real_read_body(response, policy, deadline)

    monkeypatch.setattr(transport, "read_body", measured)
    canary.routes["/"] = send_body(b"x" * 3_000_000, declare_length=False)
    policy = FetchPolicy(allow_private=True, max_bytes=100_000,
                         address_allowed=only_loopback_one)
    with pytest.raises(PayloadTooLarge):
        fetch(f"http://127.0.0.1:{canary.port}/", policy)
    assert sum(sizes) == policy.max_bytes + 1


@pytest.mark.parametrize("route", [drip_body, drip_headers])
def test_slow_drip_hits_the_deadline(canary, route):
    """Stop a server that drips bytes just fast enough."""
    canary.routes["/"] = route
    policy = FetchPolicy(allow_private=True, connect_timeout=0.3,
                         read_timeout=0.3, total_timeout=0.5,
                         address_allowed=only_loopback_one)
    started = time.monotonic()
    with pytest.raises(InvalidInput) as caught:
        fetch(f"http://127.0.0.1:{canary.port}/", policy)
    elapsed = time.monotonic() - started
    assert caught.value.code == "url_fetch_failed"
    assert "longer than 0.5 seconds" in caught.value.message
    assert 0.4 < elapsed < 1.5


def test_not_found_fails(canary):
    """Fail on a 404."""
    with pytest.raises(InvalidInput) as caught:
        fetch(f"http://127.0.0.1:{canary.port}/missing", LOCAL_POLICY)
    assert caught.value.code == "url_fetch_failed"
    assert "404" in caught.value.message


def test_compressed_body_is_refused(canary):
    """Refuse a compressed body rather than inflate it."""
    canary.routes["/"] = send_body(BODY, headers=[
        ("Content-Encoding", "gzip")])
    with pytest.raises(InvalidInput) as caught:
        fetch(f"http://127.0.0.1:{canary.port}/", LOCAL_POLICY)
    assert caught.value.code == "url_fetch_failed"


def test_closed_port_fails():
    """Fail when nothing listens."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with pytest.raises(InvalidInput) as caught:
        fetch(f"http://127.0.0.1:{port}/", LOCAL_POLICY)
    assert caught.value.code == "url_fetch_failed"


def test_https_to_a_plain_http_server_fails(canary):
    """Fail when the TLS handshake fails."""
    with pytest.raises(InvalidInput) as caught:
        fetch(f"https://127.0.0.1:{canary.port}/", LOCAL_POLICY)
    assert caught.value.code == "url_fetch_failed"


# --- one deadline over all of a request's URLs ---------------------------

SHARED_DEADLINE_POLICY = FetchPolicy(
    allow_private=True, connect_timeout=1.0, read_timeout=1.0,
    total_timeout=0.5, address_allowed=only_loopback_one)


def test_fetch_all_returns_the_bodies_in_order(canary):
    """Return each URL's body, in the order of the URLs."""
    for number in range(3):
        canary.routes[f"/{number}"] = send_body(BODY * (number + 1))
    urls = [f"http://127.0.0.1:{canary.port}/{number}"
            for number in (2, 0, 1)]
    assert fetch_all(urls, LOCAL_POLICY) == [BODY * 3, BODY, BODY * 2]
    assert [path for path, _ in canary.requests] == ["/2", "/0", "/1"]


def test_fetch_all_of_nothing_is_nothing():
    """Return no bodies for no URLs."""
    assert fetch_all([], LOCAL_POLICY, resolver_failing_the_test) == []


@pytest.mark.parametrize("route", [drip_body, drip_headers])
def test_slow_urls_share_one_deadline(canary, route):
    """Stop three dripping URLs after one total_timeout, not three."""
    for number in range(3):
        canary.routes[f"/slow/{number}"] = route
    urls = [f"http://127.0.0.1:{canary.port}/slow/{number}"
            for number in range(3)]
    started = time.monotonic()
    with pytest.raises(InvalidInput) as caught:
        fetch_all(urls, SHARED_DEADLINE_POLICY)
    elapsed = time.monotonic() - started
    assert caught.value.code == "url_fetch_failed"
    assert "longer than 0.5 seconds" in caught.value.message
    assert 0.4 < elapsed < 1.0
    assert [path for path, _ in canary.requests] == ["/slow/0"]


def test_urls_each_in_time_are_not_in_time_together(canary):
    """Count every URL's time against the one deadline of the batch."""
    for number in range(3):
        canary.routes[f"/wait/{number}"] = send_after(0.3)
    urls = [f"http://127.0.0.1:{canary.port}/wait/{number}"
            for number in range(3)]
    assert fetch(urls[0], SHARED_DEADLINE_POLICY) == BODY
    started = time.monotonic()
    with pytest.raises(InvalidInput) as caught:
        fetch_all(urls, SHARED_DEADLINE_POLICY)
    elapsed = time.monotonic() - started
    assert caught.value.code == "url_fetch_failed"
    assert "fetching 3 URLs took longer than 0.5 seconds" in (
        caught.value.message)
    assert 0.4 < elapsed < 1.0
    assert [path for path, _ in canary.requests] == [
        "/wait/0", "/wait/0", "/wait/1"]


def test_fetch_all_stops_at_the_first_refused_url(canary):
    """Raise the first URL's refusal and fetch nothing after it."""
    urls = [f"http://127.0.0.1:{canary.port}/",
            f"http://127.0.0.2:{canary.port}/",
            f"http://127.0.0.1:{canary.port}/"]
    with pytest.raises(InvalidInput) as caught:
        fetch_all(urls, LOCAL_POLICY)
    assert caught.value.code == "url_not_allowed"
    assert len(canary.requests) == 1


def test_fetch_all_raises_too_large(canary):
    """Raise PayloadTooLarge for an oversize body among several."""
    policy = FetchPolicy(allow_private=True, max_bytes=len(BODY),
                         address_allowed=only_loopback_one)
    canary.routes["/big"] = send_body(BODY + b"x")
    urls = [f"http://127.0.0.1:{canary.port}/",
            f"http://127.0.0.1:{canary.port}/big"]
    with pytest.raises(PayloadTooLarge) as caught:
        fetch_all(urls, policy)
    assert caught.value.code == "image_too_large"


def test_expired_deadline_stops_before_the_lookup(no_connections):
    """Resolve nothing once a shared deadline has passed."""
    deadline = Deadline(0.0)
    with deadline:
        with pytest.raises(InvalidInput) as caught:
            fetch("http://images.example/", LOCAL_POLICY,
                  resolver_failing_the_test, deadline)
    assert caught.value.code == "url_fetch_failed"
    assert "longer than 0.0 seconds" in caught.value.message
    assert no_connections == []


def test_policy_import_leaves_urllib3_unloaded():
    """Import the policy without urllib3, which only URLs need."""
    result = subprocess.run(
        [sys.executable, "-c",
         "import sys, app.fetch, app.fetch.policy; "
         "sys.exit('urllib3' in sys.modules)"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5)
    assert result.returncode == 0, result.stderr


# --- one DNS lookup, then the checked address -----------------------------

@pytest.fixture
def no_name_lookups(monkeypatch):
    """Let only numeric addresses through socket.getaddrinfo."""
    names = []
    real_getaddrinfo = socket.getaddrinfo

    def numeric_only(host, *args, **kwargs):
        if parse_ip_literal(str(host)) is None:
            names.append(host)
            raise socket.gaierror("name lookups are not allowed here")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", numeric_only)
    return names


def test_host_is_resolved_once_and_its_address_used(canary,
                                                    no_name_lookups):
    """Resolve once, connect to that address, send the name as Host."""
    canary.routes["/a.png?size=2"] = send_body(BODY)
    resolver = resolver_returning("127.0.0.1")
    body = fetch(f"http://images.example:{canary.port}/a.png?size=2",
                 LOCAL_POLICY, resolver)
    assert body == BODY
    assert resolver.calls == ["images.example"]
    assert no_name_lookups == []
    assert canary.requests == [
        ("/a.png?size=2", f"images.example:{canary.port}")]


def test_default_port_is_left_out_of_the_host_header():
    """Leave the default port out of Host and bracket IPv6."""
    assert check_url("http://images.example/").host_header == (
        "images.example")
    assert check_url("https://[::1]/").host_header == "[::1]"
    assert check_url("https://[::1]:8443/").host_header == "[::1]:8443"


@pytest.fixture
def tls_files(tmp_path):
    """Write a self-signed certificate for images.example, and its key."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-days", "1", "-subj", "/CN=images.example",
         "-addext", "subjectAltName=DNS:images.example",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=5)
    return cert, key


@pytest.fixture
def tls_canary(tls_files, monkeypatch):
    """Serve HTTPS on 127.0.0.1 with a certificate the client trusts."""
    cert, key = tls_files
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = Canary("127.0.0.1", tls_context=context)
    yield server
    server.close()


def test_https_checks_the_certificate_against_the_name(tls_canary):
    """Verify the certificate against the name, not the address."""
    resolver = resolver_returning("127.0.0.1")
    url = f"https://images.example:{tls_canary.port}/"
    assert fetch(url, LOCAL_POLICY, resolver) == BODY
    assert tls_canary.requests == [
        ("/", f"images.example:{tls_canary.port}")]


def test_https_refuses_a_certificate_for_another_name(tls_canary):
    """Refuse a certificate that does not cover the URL's name."""
    resolver = resolver_returning("127.0.0.1")
    with pytest.raises(InvalidInput) as caught:
        fetch(f"https://other.example:{tls_canary.port}/", LOCAL_POLICY,
              resolver)
    assert caught.value.code == "url_fetch_failed"
    assert tls_canary.requests == []
