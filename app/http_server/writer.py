"""cheroot's socket writer, sending a response's head with its body.

cheroot writes the head of a response (status line and header fields)
and then each chunk of its body, each with a ``send`` of its own: a
small JSON answer leaves in two TCP segments, and the client's kernel
and event loop handle two arrivals. The worker thread gives up the GIL
for each send, too, and on a busy server waits to get it back.
:class:`HeadWithBodyWriter` keeps the head until the body's first chunk
and sends both at once; whatever ends the response (the last chunk of a
chunked body, an error page, the request's end) flushes it.
"""

from cheroot.makefile import MakeFile, StreamWriter


class HeadWithBodyWriter(StreamWriter):
    """A socket writer that can keep one write back until the next one."""

    _holding = False

    def hold_next(self):
        """Keep the next write in memory; send it with the one after."""
        self._holding = True

    def write(self, data):
        """Send data, after what was held; or hold it, if asked to."""
        if not self._holding:
            return super().write(data)
        self._holding = False
        self._checkClosed()
        with self._write_lock:
            self._write_buf.extend(data)
        self.bytes_written += len(data)
        return len(data)

    def flush(self):
        """Send whatever is held; a request's end calls this."""
        self._holding = False
        if self._write_buf and not self.closed:
            super().flush()


def make_file(sock, mode, bufsize):
    """Return cheroot's reader of sock, or a head-holding writer."""
    if "w" in mode:
        return HeadWithBodyWriter(sock, mode, bufsize)
    return MakeFile(sock, mode, bufsize)
