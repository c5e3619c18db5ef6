"""Own TFLite interpreters and lend each to one thread at a time.

An interpreter keeps its tensors between ``set_tensor``, ``invoke`` and
``get_tensor``, so two threads must never use one at once. A pool holds a
fixed number of them (about one per core: ``invoke`` releases the GIL, so
two interpreters on two threads really run in parallel) and lends them out;
request threads decode and pre-process in parallel and queue only for the
model itself.

A pool starts with one warm interpreter and creates the others when
requests overlap, up to its size: the service starts sooner, and memory
(each interpreter holds its own copy of the packed weights) follows the
concurrency it really sees. Creating an interpreter holds the GIL for
20-60 ms, which is why the pool does not do it in a background thread
that would stall the request threads instead.

Threads inside one invoke trade throughput for latency: on two cores,
two threads per invoke answer a lone request a third faster, but under
load they compete with the other interpreters for the same cores. So a
pool can also hold one *lone-request* interpreter with more threads: it
serves a request that finds no other runner of the pool lent out, and
only then;
overlapping requests get the single-thread runners.
"""

import collections
import contextlib
import threading
import time

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


class _Handoff:
    """A borrower waiting in line, and the runner handed to it."""

    __slots__ = ("ready", "runner")

    def __init__(self):
        """Wait for nothing yet."""
        self.ready = threading.Event()
        self.runner = None


class InterpreterPool:
    """Runners of one model file, created on demand and lent one at a time.

    Borrowers that find every runner busy wait in line: a runner given
    back goes straight to the one that has waited longest, so no request
    is overtaken again and again under load (long tails), and only that
    one thread is woken.
    """

    def __init__(self, model_path, size, num_threads, wait_timeout,
                 lone_request_threads=0):
        """Create and warm up the first runner; the rest come on demand.

        ``size`` caps the runners with ``num_threads`` threads each;
        ``wait_timeout`` bounds a borrower's wait when all are lent out.
        ``lone_request_threads`` above ``num_threads`` adds the
        lone-request runner (see the module), which is then the first one
        created.
        """
        self._model_path = model_path
        self._num_threads = num_threads
        self._wait_timeout = wait_timeout
        self.size = size
        self.on_run = None
        self._runners = []
        self._creating = threading.Lock()
        # Guards the free runners, the line of waiting borrowers and the
        # count of runners lent out.
        self._lock = threading.Lock()
        self._free = []
        self._waiting = collections.deque()
        self._lent = 0
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
            first = self._create()
            first.warm_up()
            self._free.append(first)

    @property
    def created(self):
        """Return how many runners exist, the lone-request one included."""
        return len(self._runners) + (self._lone_runner is not None)

    @property
    def waiting(self):
        """Return how many borrowers are waiting in line for a runner."""
        return len(self._waiting)

    def fill(self):
        """Create every runner now, so that none is created under load."""
        while (runner := self._create()) is not None:
            self._give_back(runner, lent=False)

    def _create(self):
        """Return a new runner, or None once the pool has ``size`` of them."""
        with self._creating:
            if len(self._runners) >= self.size:
                return None
            runner = ModelRunner(self._model_path, self._num_threads)
            self._runners.append(runner)
            return runner

    @property
    def input_shape(self):
        """Return the model's input shape for one image."""
        return (self._lone_runner or self._runners[0]).input_shape

    @property
    def input_dtype(self):
        """Return the NumPy dtype the model's input takes."""
        return (self._lone_runner or self._runners[0]).input_dtype

    @contextlib.contextmanager
    def borrow(self):
        """Lend one runner to the calling thread for a with-block.

        The lone-request runner if nothing else is lent out; else a free
        single-thread runner, else a new one while the pool is below its
        size, else the next one given back, in arrival order.
        """
        with self._lock:
            if self._lone_runner_free and self._lent == 0:
                self._lone_runner_free = False
                runner = self._lone_runner
            else:
                runner = self._free.pop() if self._free else None
            if runner is not None:
                self._lent += 1
        if runner is None:
            runner = self._create()
            if runner is not None:
                with self._lock:
                    self._lent += 1
            else:
                runner = self._wait_for_runner()
        try:
            yield runner
        finally:
            self._give_back(runner)

    def _give_back(self, runner, lent=True):
        """Hand a runner to the longest-waiting borrower, or keep it free.

        The lone-request runner is never handed over: waiting borrowers
        mean the pool is busy, and then it would only compete for the
        cores.
        """
        with self._lock:
            if runner is self._lone_runner:
                self._lone_runner_free = True
            elif self._waiting:
                handoff = self._waiting.popleft()
                handoff.runner = runner
                handoff.ready.set()
                if not lent:
                    self._lent += 1
                return
            else:
                self._free.append(runner)
            if lent:
                self._lent -= 1

    def _wait_for_runner(self):
        """Return a runner handed over within the wait timeout."""
        handoff = _Handoff()
        with self._lock:
            if self._free:
                self._lent += 1
                return self._free.pop()
            self._waiting.append(handoff)
        if handoff.ready.wait(self._wait_timeout):
            return handoff.runner
        with self._lock:
            if handoff.runner is None:
                self._waiting.remove(handoff)
                raise Unavailable(
                    f"no interpreter was free within {self._wait_timeout} s",
                    code="model_busy")
        # Handed over just as the wait ran out: use it.
        return handoff.runner

    def run(self, batch):
        """Run one batch on whichever runner is free first.

        ``on_run(wait seconds, run seconds, batch size)``, when set, hears
        of every batch run: metrics of the queue and of the model.
        """
        asked = time.perf_counter()
        with self.borrow() as runner:
            started = time.perf_counter()
            output = runner.run(batch)
        if self.on_run is not None:
            self.on_run(started - asked, time.perf_counter() - started,
                        batch.shape[0])
        return output
