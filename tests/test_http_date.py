"""The Date header: formatted once a second, exactly as RFC 9110 asks."""

import email.utils
import time

from app.http_server.responses import HttpDate


class SteppedClock:
    """A clock that reads the times it is given, in turn."""

    def __init__(self, *times):
        """Read ``times`` one after another."""
        self._times = list(times)

    def __call__(self):
        """Return the next time."""
        return self._times.pop(0)


def test_date_is_the_imf_fixdate_of_the_current_second():
    """Each reading gives what the standard library formats for it."""
    times = (0.0, 1.999, 951782400.5, 951782400.9, 951782401.0,
             1798761599.25)
    date = HttpDate(SteppedClock(*times))
    for moment in times:
        assert date() == email.utils.formatdate(
            int(moment), usegmt=True).encode("ascii")


def test_date_header_is_sent_once_and_current(client):
    """A response from the server has one Date header, of this second."""
    before = time.time()
    response = client.get("/health/live")
    after = time.time()
    assert response.status_code == 200
    raw = response.raw.headers.getlist("Date")
    assert len(raw) == 1
    sent = email.utils.parsedate_to_datetime(raw[0]).timestamp()
    assert int(before) <= sent <= after
