"""An HTTP/1.1 server on cheroot that gives a worker only a whole request.

cheroot hands a connection to one of its few worker threads as soon as it
is accepted or has a byte to read, and the worker then waits for the
rest: a client that sends slowly, or nothing, holds a worker for as long
as it likes. Here the thread that watches the sockets reads each request
ahead, without blocking, until its head and body are all in memory
(:mod:`.connections`, which uses :mod:`.framing` to tell where a request
ends), under a deadline for the head, a minimum rate for the body and a
memory budget; only then does a worker take it. Errors cheroot writes
itself are the service's JSON errors (:mod:`.request`). It also stops
without dropping a connection: it closes its port without resetting the
connections queued on it (:mod:`.listener`), and leaves idle kept-alive
connections for their clients to close (:mod:`.server`).
"""
