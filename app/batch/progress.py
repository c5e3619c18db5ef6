"""Show a run's progress: a tqdm bar on a terminal, plain lines otherwise.

A log file or a CI console gets a line every few seconds instead of the
bar's carriage returns, which would fill it with thousands of updates.
"""

import time

from tqdm import tqdm

LINE_INTERVAL = 10.0


def make_progress(mode, total, done, failed, stream):
    """Return the progress display ``mode`` (auto, bar, lines, off) asks."""
    if mode == "auto":
        mode = "bar" if stream.isatty() else "lines"
    if mode == "bar":
        return BarProgress(total, done, failed, stream)
    if mode == "lines":
        return LineProgress(total, done, failed, stream)
    return NoProgress()


class NoProgress:
    """Show nothing."""

    def update(self, failed):
        """Count one more input done."""

    def close(self):
        """End the display."""


class BarProgress:
    """A tqdm bar with the rate in images per second and the ETA."""

    def __init__(self, total, done, failed, stream):
        """Start the bar at the inputs an earlier run already did."""
        self._bar = tqdm(total=total, initial=done, unit="img", file=stream,
                         dynamic_ncols=True, smoothing=0.1)
        self._failed = failed
        self._bar.set_postfix(failed=failed, refresh=False)

    def update(self, failed):
        """Count one more input done, and whether it failed."""
        if failed:
            self._failed += 1
            self._bar.set_postfix(failed=self._failed, refresh=False)
        self._bar.update(1)

    def close(self):
        """Leave the final bar on screen."""
        self._bar.close()


class LineProgress:
    """A line every ``interval`` seconds: done, rate, failures, ETA."""

    def __init__(self, total, done, failed, stream, interval=LINE_INTERVAL,
                 clock=time.monotonic):
        """Start counting from the inputs an earlier run already did."""
        self.total, self.done, self.failed = total, done, failed
        self._stream, self._interval, self._clock = stream, interval, clock
        self._started = self._last = clock()
        self._first = done

    def update(self, failed):
        """Count one more input; print a line when the interval is up."""
        self.done += 1
        self.failed += bool(failed)
        if self._clock() - self._last >= self._interval:
            self._print()

    def close(self):
        """Print the last line."""
        self._print()

    def _print(self):
        """Print where the run stands."""
        self._last = now = self._clock()
        rate = (self.done - self._first) / max(now - self._started, 1e-9)
        left = self.total - self.done
        eta = _duration(left / rate) if rate > 0 else "?"
        percent = 100.0 * self.done / self.total if self.total else 100.0
        print(f"progress: {self.done}/{self.total} ({percent:.1f}%), "
              f"{rate:.1f} images/s, {self.failed} failed, ETA {eta}",
              file=self._stream, flush=True)


def _duration(seconds):
    """Return seconds as H:MM:SS."""
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
