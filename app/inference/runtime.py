"""Own TFLite interpreters; give each one thread that invokes it.

An interpreter keeps its tensors between ``set_tensor``, ``invoke`` and
``get_tensor``, so two threads must never use one at once. A pool holds a
fixed number of them (about one per core: ``invoke`` releases the GIL, so
two interpreters on two threads really run in parallel); request threads
decode and pre-process in parallel and queue only for the model itself.

Each interpreter of a pool has a thread of its own, which takes the next
queued batch, invokes, hands the output back and takes the next one, all
without waiting for another thread. When request threads took turns with
the interpreters instead, the request that had just invoked held the GIL
for its response while the next one, woken to invoke, waited for it: on
two cores at concurrency 8 an interpreter stood still 0.7 ms on average
between two invokes of 14 ms, and the cores were 11 % idle. With invoke
threads the pause is 0.15 ms (0.05 ms median), and 4 % idle.

A pool starts with one warm interpreter and creates the others when
requests overlap, up to its size: the service starts sooner, and memory
(each interpreter holds its own copy of the packed weights) follows the
concurrency it really sees. Creating an interpreter holds the GIL for
20-60 ms, so it happens only when a queued request needs it, never ahead
in the background where it would stall the request threads for nothing.

Threads inside one invoke trade throughput for latency: on two cores,
two threads per invoke answer a lone request a third faster, but under
load they compete with the other interpreters for the same cores. So a
pool can also hold one *lone-request* interpreter with more threads: it
serves a request that finds no other request using the pool, and only
then, in the request's own thread; overlapping requests queue for the
single-thread interpreters.
"""

import concurrent.futures
import contextlib
import queue
import threading
import time
import weakref

import numpy as np

from app.errors import Unavailable

try:
    # LiteRT is the maintained successor of tflite-runtime and works with
    # NumPy 2; tflite-runtime 2.14 still works with NumPy < 2.
    from ai_edge_litert.interpreter import Interpreter
    RUNTIME = "ai-edge-litert"
except ImportError:  # pragma: no cover - exercised by a separate CI venv
    from tflite_runtime.interpreter import Interpreter
    RUNTIME = "tflite-runtime"


class ModelRunner:
    """One interpreter of a model file, resized on demand to a batch size."""

    def __init__(self, model_path, num_threads):
        """Load the model file and allocate its tensors for a batch of one."""
        self._interpreter = Interpreter(
            model_path=str(model_path), num_threads=num_threads)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self._batch_size = int(self._input["shape"][0])

    @property
    def input_shape(self):
        """Return the model's input shape for one image, batch axis first."""
        return (1, *(int(size) for size in self._input["shape"][1:]))

    @property
    def input_dtype(self):
        """Return the NumPy dtype the model's input tensor takes."""
        return self._input["dtype"]

    def warm_up(self):
        """Run one inference so that the first request pays no set-up."""
        self.run(np.zeros(self.input_shape, dtype=self.input_dtype))

    def run(self, batch):
        """Return the model's float output for an (N, ...) input batch."""
        if batch.shape[0] != self._batch_size:
            self._resize(batch.shape[0])
        self._interpreter.set_tensor(self._input["index"], batch)
        self._interpreter.invoke()
        return dequantize(self._interpreter.get_tensor(self._output["index"]),
                          self._output)

    def _resize(self, batch_size):
        """Reallocate the tensors for another batch size."""
        shape = [batch_size, *self._input["shape"][1:]]
        self._interpreter.resize_tensor_input(self._input["index"], shape)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self._batch_size = batch_size


def dequantize(tensor, details):
    """Return a quantized output tensor as float32 (as pycoral does)."""
    if tensor.dtype == np.float32:
        return tensor
    scale, zero_point = details["quantization"]
    if not scale:
        return tensor.astype(np.float32)
    return (scale * (tensor.astype(np.int64) - zero_point)).astype(
        np.float32)


# Tells an invoke thread to stop; a job can never be this object.
_STOP = object()


class _Job:
    """A call waiting for an invoke thread, and where its result goes."""

    __slots__ = ("call", "args", "result")

    def __init__(self, call, *args):
        """Queue ``call(runner, *args)``, not started yet."""
        self.call = call
        self.args = args
        self.result = concurrent.futures.Future()


class _Line:
    """The jobs queued for a pool's invoke threads, and who waits for what.

    Shared by the pool and its threads, rather than the pool itself: the
    threads hold this, so the pool can be collected, and then stops them.
    """

    def __init__(self):
        """Start with no job and no thread."""
        self.jobs = queue.SimpleQueue()
        self.lock = threading.Lock()
        #: Jobs no thread has taken yet (cancelled ones not counted).
        self.queued = 0
        #: Threads free to take the next job at once.
        self.idle = 0
        self.threads = 0

    def add(self, job, most_threads):
        """Queue a job; return True if a thread must be added for it."""
        with self.lock:
            self.queued += 1
            grow = self.idle < self.queued and self.threads < most_threads
            if grow:
                self.threads += 1
        self.jobs.put(job)
        return grow

    def cancel(self, job):
        """Take a job no thread has taken out of the count; tell if it was."""
        if not job.result.cancel():
            return False
        with self.lock:
            self.queued -= 1
        return True

    def serve(self, runner):
        """Run queued jobs on runner until told to stop (a thread's body)."""
        jobs, lock = self.jobs, self.lock
        with lock:
            self.idle += 1
        while True:
            job = jobs.get()
            if job is _STOP:
                return
            if not job.result.set_running_or_notify_cancel():
                continue  # its requester gave up and counted it out
            with lock:
                self.idle -= 1
                self.queued -= 1
            try:
                outcome = job.call(runner, *job.args)
            except BaseException as error:  # the requester must hear of it
                self._done()
                job.result.set_exception(error)
            else:
                # Free before the requester hears: a request it answers
                # at once must find this thread, not start another one.
                self._done()
                job.result.set_result(outcome)
                del outcome
            # Not held while waiting for the next one: its arrays belong
            # to a request that is over.
            del job

    def _done(self):
        """Count the calling thread free for the next job."""
        with self.lock:
            self.idle += 1

    def stop(self):
        """Have every invoke thread stop once the jobs queued are done."""
        with self.lock:
            threads = self.threads
        for _ in range(threads):
            self.jobs.put(_STOP)


def _invoke(runner, batch):
    """Run batch on runner; return the output and when the run began."""
    started = time.perf_counter()
    return runner.run(batch), started


def _lend(runner, lent, returned):
    """Hand runner to a borrower and wait until it gives it back."""
    lent.set_result(runner)
    returned.wait()


class InterpreterPool:
    """Runners of one model file, created on demand, each with its thread.

    Requests that find every runner busy wait in line (a FIFO queue): no
    request is overtaken again and again under load (long tails), and a
    runner's thread never waits for a request thread to take its turn.
    """

    def __init__(self, model_path, size, num_threads, wait_timeout,
                 lone_request_threads=0):
        """Create and warm up the first runner; the rest come on demand.

        ``size`` caps the runners with ``num_threads`` threads each;
        ``wait_timeout`` bounds a request's wait for one when all are
        busy. ``lone_request_threads`` above ``num_threads`` adds the
        lone-request runner (see the module), which is then the first one
        created.
        """
        self._model_path = model_path
        self._num_threads = num_threads
        self._wait_timeout = wait_timeout
        self.size = size
        self.on_run = None
        self._runners = []
        self._line = _Line()
        # Stops the invoke threads once nothing refers to the pool: a
        # request still running on a removed version keeps it alive.
        weakref.finalize(self, self._line.stop)
        # Guards the lone-request runner and the count of requests using
        # the pool (those waiting in line included).
        self._lock = threading.Lock()
        self._using = 0
        self._lone_runner = None
        self._lone_runner_free = False
        #: Threads of the lone-request runner; 0 when there is none.
        self.lone_request_threads = (
            lone_request_threads if lone_request_threads > num_threads
            else 0)
        if self.lone_request_threads:
            self._lone_runner = ModelRunner(model_path, lone_request_threads)
            self._lone_runner.warm_up()
            self._lone_runner_free = True
        else:
            with self._borrow_from_line():
                pass

    @property
    def created(self):
        """Return how many runners exist, the lone-request one included."""
        return len(self._runners) + (self._lone_runner is not None)

    @property
    def waiting(self):
        """Return how many requests are waiting in line for a runner."""
        return self._line.queued

    def fill(self):
        """Create every runner now, so that none is created under load.

        Each one runs once as it is made, which sets up its kernels.
        Holding every single-thread runner at once makes the pool create
        those it lacks.
        """
        with contextlib.ExitStack() as stack:
            for _ in range(self.size):
                stack.enter_context(self._borrow_from_line())

    @property
    def input_shape(self):
        """Return the model's input shape for one image."""
        return (self._lone_runner or self._runners[0]).input_shape

    @property
    def input_dtype(self):
        """Return the NumPy dtype the model's input takes."""
        return (self._lone_runner or self._runners[0]).input_dtype

    def run(self, batch):
        """Return the model's output for a batch, run when a runner is free.

        ``on_run(wait seconds, run seconds, batch size)``, when set, hears
        of every batch run, in the request's thread: metrics of the queue
        and of the model.
        """
        asked = time.perf_counter()
        runner = self._take_lone_runner()
        if runner is not None:
            try:
                output, started = _invoke(runner, batch)
            finally:
                self._give_back_lone_runner()
        else:
            job = _Job(_invoke, batch)
            with self._using_pool():
                output, started = self._wait_in_line(job, job.result)
        if self.on_run is not None:
            self.on_run(started - asked, time.perf_counter() - started,
                        batch.shape[0])
        return output

    @contextlib.contextmanager
    def borrow(self):
        """Lend the calling thread a runner of its own for a with-block.

        The lone-request runner if no other request uses the pool, else a
        single-thread runner, whose thread waits until the block ends.
        """
        runner = self._take_lone_runner()
        if runner is None:
            with self._borrow_from_line() as runner:
                yield runner
            return
        try:
            yield runner
        finally:
            self._give_back_lone_runner()

    @contextlib.contextmanager
    def _borrow_from_line(self):
        """Lend a single-thread runner, as a job that holds its thread."""
        lent = concurrent.futures.Future()
        returned = threading.Event()
        job = _Job(_lend, lent, returned)
        with self._using_pool():
            runner = self._wait_in_line(job, lent)
            try:
                yield runner
            finally:
                returned.set()
                # Once the thread is back in line, the runner counts as
                # free: a borrow that follows must not create another.
                job.result.result()

    def _take_lone_runner(self):
        """Return the lone-request runner if nothing else uses the pool."""
        with self._lock:
            if self._lone_runner_free and self._using == 0:
                self._lone_runner_free = False
                self._using += 1
                return self._lone_runner
        return None

    def _give_back_lone_runner(self):
        """Make the lone-request runner free again."""
        with self._lock:
            self._lone_runner_free = True
            self._using -= 1

    @contextlib.contextmanager
    def _using_pool(self):
        """Count the calling request as using the pool for a with-block."""
        with self._lock:
            self._using += 1
        try:
            yield
        finally:
            with self._lock:
                self._using -= 1

    def _wait_in_line(self, job, outcome):
        """Queue job for an invoke thread; return what outcome resolves to.

        ``outcome`` is the job's result, or a future the job sets as it
        starts (a lent runner). Waiting longer than the wait timeout for
        a thread to take the job is a 503 ``model_busy``; a job already
        taken is waited for to its end.
        """
        line = self._line
        if line.add(job, self.size):
            try:
                self._add_thread()
            except BaseException:
                line.cancel(job)
                raise
        try:
            return outcome.result(self._wait_timeout)
        except concurrent.futures.TimeoutError:
            if line.cancel(job):
                raise Unavailable(
                    f"no interpreter was free within {self._wait_timeout} s",
                    code="model_busy") from None
        # Taken just as the wait ran out: it runs now, so wait for it.
        return outcome.result()

    def _add_thread(self):
        """Create and warm up a runner; start the thread that invokes it."""
        try:
            runner = ModelRunner(self._model_path, self._num_threads)
            runner.warm_up()
        except BaseException:
            with self._line.lock:
                self._line.threads -= 1
            raise
        self._runners.append(runner)
        threading.Thread(target=self._line.serve, args=(runner,),
                         name=f"invoke-{len(self._runners)}",
                         daemon=True).start()
