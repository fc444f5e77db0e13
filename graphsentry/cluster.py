"""What every multi-process Bytewax command shares: free local ports, recovery partitions,
spawning and watching the processes of a cluster, restarting it from the last snapshot, and
turning failures and signals into one clear line.

* :func:`run_spawned` runs a flow on N spawned processes (never forked: Bytewax runs Rust
  threads). Each process dies with its parent (``PR_SET_PDEATHSIG``), so a ``kill -9`` of the
  command leaves no orphan behind. When one process fails, the others are stopped at once and
  :class:`ClusterFailed` names the first real cause (an error a process reported, or a process
  killed by a signal) rather than the others' lost connections.
* :func:`supervise` restarts a failed run from the last snapshot when there is one (recovery
  directory): at most :data:`RESTART_ATTEMPTS` restarts, backing off from
  :data:`RESTART_BACKOFF_S` (doubling, at most :data:`RESTART_BACKOFF_MAX_S`), one line per
  restart with its cause; a run that lasted :data:`HEALTHY_AFTER_S` resets the count.
* Native output (Rust panics of Bytewax workers, anything librdkafka writes to fd 2) goes to a
  per-process log file (:func:`native_stderr`); Python's own ``sys.stderr`` stays on the
  terminal. A failure line points at the log when it has something.
* :func:`stop_on_signals` / :func:`interrupt_on_signals`: SIGINT and SIGTERM end a worker's
  input (the flow drains, flushes and snapshots) and interrupt the parent.
* :func:`hold_thread_state`: a Bytewax worker thread keeps one Python thread state for its
  lifetime instead of one per call into Python.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import queue
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Any, TypeVar

from graphsentry.errors import GraphsentryError, redact

RECOVERY_PARTITIONS = 8  # fixed forever once created: the most processes ever resumed with
RESTART_ATTEMPTS = 5
"""Restarts of a failed run with a recovery directory (wanted config key:
``run.restart_attempts``)."""
RESTART_BACKOFF_S = 2.0
"""Wait before the first restart, doubled for each further one (``run.restart_backoff_seconds``):
2 + 4 + 8 + 16 + 32 s by default."""
RESTART_BACKOFF_MAX_S = 60.0
HEALTHY_AFTER_S = 600.0
"""A run that lasted this long before failing starts the restart count afresh."""
STOP_OTHERS_S = 3.0
"""After one process failed, how long the others get to stop before they are killed."""

Build = Callable[[Any, int, Callable[[int], None], threading.Event],
                 tuple[Any, dict[str, Any], Callable[[], Any]]]
"""``build(job, index, on_read, stop) -> (flow, run options, result)``: a process's share of
a cluster; ``result()`` is what it reports (also after a failure)."""
T = TypeVar("T")


_THREAD = threading.local()


def hold_thread_state() -> None:
    """Keep the calling thread's Python thread state until the thread ends.

    Bytewax runs the workers of a cluster (``cluster_main``: 2 or more processes, or
    ``python -m bytewax.run``) on threads of its own and enters Python from them through
    PyO3's ``Python::with_gil``, i.e. ``PyGILState_Ensure`` / ``PyGILState_Release``. On a
    thread that holds no thread state between those calls, CPython creates one for each call
    and destroys it afterwards (PyO3 issue #2495): for every step call, and for every item
    pickled for or unpickled from another process, a frame-stack chunk is mapped and unmapped
    (``mmap``/``munmap``) and the thread's ``threading.local`` values are lost. One
    ``PyGILState_Ensure`` that is never released keeps a single thread state for the thread;
    later calls reuse it and still release the GIL between calls.

    Call it from code Bytewax runs on each worker thread before the items flow (the flows'
    sinks call it in ``build``; the bridge's step before it keeps a ``threading.local``). It
    does nothing on the main thread (``run_main`` runs there, its thread state lives as long
    as the process) or when the thread holds its state already.
    What it saves on 2 processes: docs/performance.md (``bench/bench_scale.py``).
    """
    if getattr(_THREAD, "held", False) or threading.get_ident() == threading.main_thread().ident:
        return
    ctypes.pythonapi.PyGILState_Ensure()
    _THREAD.held = True


def free_ports(count: int) -> list[int]:
    """``count`` TCP ports free on 127.0.0.1 right now (for ``bytewax`` process addresses)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def prepare_recovery(directory: str) -> None:
    """Create Bytewax recovery partitions in ``directory`` unless it already has them."""
    path = Path(directory)
    if any(path.glob("part-*.sqlite3")):
        return
    from bytewax.recovery import init_db_dir

    path.mkdir(parents=True, exist_ok=True)
    init_db_dir(path, RECOVERY_PARTITIONS)  # type: ignore[no-untyped-call]


# --- failures and signals ------------------------------------------------------------------

class ClusterFailed(GraphsentryError):
    """A run failed: ``cause`` in one line, ``results`` from the processes that reported."""

    def __init__(self, cause: str, results: list[Any] | None = None) -> None:
        super().__init__(cause)
        self.cause = cause
        self.results = results or []


class ClusterInterrupted(KeyboardInterrupt):
    """A signal stopped a run; ``results`` holds what its processes reported."""

    def __init__(self, results: list[Any], signum: int = signal.SIGINT) -> None:
        super().__init__("interrupted")
        self.results = results
        self.signum = signum


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM in a parent process (:func:`interrupt_on_signals`)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_code(signum: int) -> int:
    """The shell's convention for a run ended by ``signum``: 130 for SIGINT, 143 for SIGTERM."""
    return 128 + int(signum)


class StopEvent(threading.Event):
    """Set by the first SIGINT/SIGTERM; ``signum`` says which."""

    signum: int = 0


def stop_on_signals(abort_on_repeat: bool = False) -> StopEvent:
    """SIGINT and SIGTERM end the input (the flow drains and finishes) instead of raising
    inside a Bytewax callback (a Rust panic). A second signal raises KeyboardInterrupt when
    ``abort_on_repeat`` (an interactive in-process run); a cluster process ignores it (Ctrl-C
    reaches it directly and then through its parent)."""
    stop = StopEvent()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            if abort_on_repeat:
                raise KeyboardInterrupt
            return
        stop.signum = signum
        stop.set()

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, request_stop)
    return stop


def interrupt_on_signals() -> None:
    """In a parent process: SIGINT and SIGTERM raise :class:`Interrupted`."""

    def interrupt(signum: int, _frame: FrameType | None) -> None:
        raise Interrupted(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, interrupt)


def exception_chain(exc: BaseException) -> list[BaseException]:
    """``exc``, the exception it was raised from or during, and so on (at most 20)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 20:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _stop_kind(exc: BaseException) -> type[BaseException] | None:
    """KeyboardInterrupt (Ctrl-C) or BrokenPipeError (stdout closed) when either is in
    ``exc``'s chain: a stop the user asked for, not a failure."""
    for kind in (KeyboardInterrupt, BrokenPipeError):
        if any(isinstance(item, kind) for item in exception_chain(exc)):
            return kind
    return None


def failure_cause(exc: BaseException) -> tuple[str, bool]:
    """``(one line, lost_peer)`` for an exception out of a Bytewax run: the Python exception
    at the root of the chain (a :class:`GraphsentryError`'s own text, anything else as
    ``internal error: Type: text``), or, when the chain holds only Bytewax's and Rust's own
    errors, the loss of another process of the cluster."""
    chain = exception_chain(exc)
    for item in reversed(chain):
        module = type(item).__module__
        if isinstance(item, GraphsentryError):
            return str(item), False
        if not module.startswith(("bytewax", "pyo3")) and not isinstance(item, KeyboardInterrupt):
            text = str(item).splitlines()[0] if str(item) else ""
            return redact(f"internal error: {type(item).__name__}: {text}"), False
    return "lost the connection to another process of the cluster", True


@contextlib.contextmanager
def native_stderr(path: Path | None) -> Iterator[None]:
    """While inside, what native code writes to fd 2 (Rust panics of Bytewax workers)
    goes to ``path``; Python's ``sys.stderr`` keeps writing to the terminal. Enter it before
    anything keeps a reference to ``sys.stderr`` (a progress bar)."""
    if path is None:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    previous = sys.stderr
    sys.stderr = open(saved, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115
    os.dup2(log, 2)
    os.close(log)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        sys.stderr = previous


class LogDir:
    """Where the processes of one command put their native output (a fresh temporary
    directory unless given); :meth:`mention` names a log only when it holds something."""

    def __init__(self, name: str, directory: str | None = None) -> None:
        base = Path(directory) if directory else Path(tempfile.mkdtemp(prefix=f"graphsentry-"
                                                                        f"{name}-"))
        base.mkdir(parents=True, exist_ok=True)
        self.path, self.name, self.temporary = base, name, directory is None

    def tidy(self) -> None:
        """Remove empty logs, and the directory too when it is a temporary one left empty."""
        for log in self.path.glob(f"{self.name}-*.log"):
            if log.stat().st_size == 0:
                log.unlink()
        if self.temporary:
            with contextlib.suppress(OSError):
                self.path.rmdir()  # only when empty

    def file(self, index: int) -> Path:
        return self.path / f"{self.name}-{index}.log"

    def mention(self, index: int) -> str:
        """`` (details: FILE)`` when process ``index`` left output there, else nothing."""
        log = self.file(index)
        return f" (details: {log})" if log.exists() and log.stat().st_size > 0 else ""


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent dies (a ``kill -9`` of the command)."""
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _child(build: Build, job: Any, addresses: list[str], index: int, read: Any,
           results: Any, log_path: Path | None) -> None:
    """A spawned process: build its share of the flow, run it, report once."""
    _die_with_parent()
    os.environ["RUST_BACKTRACE"] = "0"
    with native_stderr(log_path):
        stop = stop_on_signals()

        def on_read(n: int) -> None:
            with read.get_lock():
                read.value += n

        report: Callable[[], Any] = lambda: None  # noqa: E731
        try:
            from bytewax.testing import cluster_main, run_main

            flow, options, report = build(job, index, on_read, stop)
            if len(addresses) == 1:
                run_main(flow, **options)  # type: ignore[no-untyped-call]
            else:
                cluster_main(flow, addresses, index, **options)  # type: ignore[no-untyped-call]
        except BaseException as exc:  # reported to the parent, which prints one line
            cause, lost_peer = failure_cause(exc)
            traceback.print_exc(file=sys.__stderr__)  # to the native log, not the terminal
            results.put(("failed", index, cause, lost_peer, report()))
            sys.exit(1)
        results.put(("ok", index, report()))


@dataclass
class _Failure:
    index: int
    cause: str
    lost_peer: bool
    named: bool = False
    """The cause already names the process."""


def _primary(failures: list[_Failure]) -> _Failure:
    real = [f for f in failures if not f.lost_peer]
    return real[0] if real else failures[0]


def _stop_all(children: list[Any], grace: float) -> None:
    for child in children:
        if child.is_alive():
            child.terminate()
    deadline = time.monotonic() + grace
    for child in children:
        child.join(timeout=max(0.1, deadline - time.monotonic()))
        if child.is_alive():
            child.kill()
            child.join(timeout=5)


def run_spawned(build: Build, job: Any, processes: int, name: str,
                advance: Callable[[int], None], grace_seconds: float = 15.0,
                logs: LogDir | None = None) -> list[Any]:
    """Run ``build``'s flow on ``processes`` spawned processes; their results, by index.

    ``advance`` gets the growth of the processes' shared read counter (a progress bar).
    A failed process raises :class:`ClusterFailed`; SIGINT/SIGTERM (:class:`Interrupted`,
    KeyboardInterrupt) stop the processes cleanly (they drain and report) and raise
    :class:`ClusterInterrupted`.
    """
    context = multiprocessing.get_context("spawn")
    addresses = [f"127.0.0.1:{port}" for port in free_ports(processes)]
    read, results = context.Value("q", 0), context.Queue()
    children = [context.Process(
        target=_child, name=f"{name}-{i}",
        args=(build, job, addresses, i, read, results, logs.file(i) if logs else None))
        for i in range(processes)]
    for child in children:
        child.start()
    done: dict[int, Any] = {}
    failures: list[_Failure] = []
    shown = 0

    def collect(timeout: float) -> None:
        with contextlib.suppress(queue.Empty):
            item = results.get(timeout=timeout)
            if item[0] == "ok":
                done[item[1]] = item[2]
            else:
                failures.append(_Failure(item[1], item[2], item[3]))
                if item[4] is not None:
                    done[item[1]] = item[4]

    try:
        while len(done) < processes or failures:
            with read.get_lock():
                now_read = int(read.value)
            advance(now_read - shown)
            shown = now_read
            collect(0.2)
            reported = {f.index for f in failures} | set(done)
            for i, child in enumerate(children):
                code = child.exitcode
                if code not in (None, 0) and i not in reported:
                    collect(1.0)  # its report may still be in the pipe
                    if i not in {f.index for f in failures}:
                        how = (f"was killed by {signal.Signals(-code).name}" if code < 0
                               else f"exited with status {code}")
                        failures.append(_Failure(i, f"process {name}-{i} {how}", False, True))
            if failures:
                _stop_all(children, STOP_OTHERS_S)
                while True:  # the others' reports (usually: lost connection)
                    before = len(failures) + len(done)
                    collect(0.1)
                    if len(failures) + len(done) == before:
                        break
                primary = _primary(failures)
                where = "" if processes == 1 or primary.named else f"{name}-{primary.index}: "
                details = logs.mention(primary.index) if logs and not primary.named else ""
                raise ClusterFailed(f"{where}{primary.cause}{details}", list(done.values()))
            if len(done) == processes:
                break
    except KeyboardInterrupt as exc:
        signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        for child in children:
            if child.is_alive():
                child.terminate()  # a stop request: they drain and report
        deadline = time.monotonic() + grace_seconds
        while len(done) + len(failures) < processes and time.monotonic() < deadline:
            if not any(c.is_alive() for c in children):
                collect(0.2)
                break
            collect(0.5)
        raise ClusterInterrupted(list(done.values()), signum) from None
    finally:
        _stop_all(children, grace_seconds)
    return [done[i] for i in sorted(done)]


def run_in_process(flow: Any, options: dict[str, Any], log: Path | None = None, *,
                   redirect: bool = True) -> None:
    """``run_main`` in this process; a failure becomes :class:`ClusterFailed` with its cause
    (the traceback and any Rust panic go to ``log``, a temporary file when None, kept and named
    in the error only when the run failed; ``redirect=False`` when the caller has already sent
    fd 2 somewhere with :func:`native_stderr`).

    Ctrl-C (a KeyboardInterrupt raised in a Bytewax callback, which Bytewax turns into a panic)
    is raised again as a plain KeyboardInterrupt, and a closed standard output (a
    BrokenPipeError in a sink, e.g. ``| head``) as BrokenPipeError, without the panic's text:
    the CLI turns each into one line and its exit code."""
    from bytewax.testing import run_main

    os.environ["RUST_BACKTRACE"] = "0"
    temporary = None
    if redirect and log is None:
        handle, name = tempfile.mkstemp(prefix="graphsentry-", suffix=".log")
        os.close(handle)
        log = temporary = Path(name)
    failed = False
    try:
        with native_stderr(log if redirect else None):
            try:
                run_main(flow, **options)  # type: ignore[no-untyped-call]
            except BaseException as exc:
                if _stop_kind(exc) is None:
                    traceback.print_exc(file=sys.__stderr__)
                raise
    except BaseException as exc:
        kind = _stop_kind(exc)
        if kind is not None:
            raise kind() from None
        failed = True
        cause, _ = failure_cause(exc)
        mention = f" (details: {log})" if log is not None and log.exists() and \
            log.stat().st_size else ""
        raise ClusterFailed(f"{cause}{mention}") from exc
    finally:
        if temporary is not None and not (failed and temporary.stat().st_size):
            temporary.unlink(missing_ok=True)


def supervise(run_once: Callable[[int], T], *, name: str, restart: bool,
              say: Callable[[str], None] | None = None,
              sleep: Callable[[float], None] = time.sleep) -> tuple[T, int]:
    """``run_once(attempt)`` until it returns, restarting after :class:`ClusterFailed` when
    ``restart`` (a recovery directory to resume from); ``(its result, restarts)``.

    Each restart is announced in one line with its cause; after :data:`RESTART_ATTEMPTS`
    restarts (or at once without ``restart``) the failure is raised.
    """
    emit = say or (lambda line: print(line, file=sys.stderr))
    restarts = 0
    while True:
        started = time.monotonic()
        try:
            return run_once(restarts + 1), restarts
        except ClusterFailed as failure:
            if not restart:
                raise
            if time.monotonic() - started >= HEALTHY_AFTER_S:
                restarts = 0
            if restarts >= RESTART_ATTEMPTS:
                raise ClusterFailed(f"{failure.cause} (gave up after {restarts} restarts)",
                                    failure.results) from None
            delay = min(RESTART_BACKOFF_S * 2 ** restarts, RESTART_BACKOFF_MAX_S)
            restarts += 1
            emit(f"graphsentry {name}: {failure.cause}; restarting from the last snapshot in "
                 f"{delay:g}s (restart {restarts} of {RESTART_ATTEMPTS})")
            sleep(delay)


def print_line(line: str, stream: IO[str] | None = None) -> None:
    """One line on stderr (or ``stream``), secrets masked."""
    print(redact(line), file=stream or sys.stderr)
