"""Where the runs of a sweep execute: here one after another, in N worker processes (--jobs), or
as Ray tasks on a cluster (--ray). Every executor calls :func:`execute` on a :class:`RunTask`, so
a run gives the same bits wherever it runs (same thread count, CPU, fp32).

Each finished run is handed to ``on_done`` as it arrives (the caller writes results.json then),
so an interrupt or a lost worker loses only the runs that had not finished.
"""

from __future__ import annotations

import os
import re
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from archcalc.bench.sweep import RunTask
from archcalc.errors import ArchcalcError, DataError, UsageError

OnDone = Callable[[dict[str, Any]], None]
Progress = Callable[[str], Callable[[dict[str, Any]], None]]

# what a worker process keeps between runs: the data, and per (digest, input, layout, device) its tensors
_DATA: dict[str, Any] = {}
_DEVICE_DATA: dict[tuple[Any, ...], Any] = {}
_PLANS: dict[tuple[str, str], Any] = {}


def default_threads(jobs: int) -> int:
    """Torch threads per run when ``jobs`` run at once: the cores split between them."""
    return max(1, (os.cpu_count() or 1) // jobs)


def execute(task: RunTask, data: Any, progress: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Train one run on ``task.threads`` torch threads; its entry of results.json."""
    import torch

    from archcalc.bench.runs import run_record, train_plan
    from archcalc.bench.train import to_device

    torch.set_num_threads(task.threads)
    plan = _plan(task, data)
    config = task.config
    key = (task.data_digest, plan.input_shape, config.channels_last, config.device)
    if key not in _DEVICE_DATA:
        _DEVICE_DATA.clear()  # one data set at a time per process
        _DEVICE_DATA[key] = to_device(data, plan.input_shape, config.device, config.channels_last)
    result, digest, load = train_plan(plan, config, _DEVICE_DATA[key], progress)
    record = run_record(task.id, plan, result, digest, load, task.threads, {"point": dict(task.point)})
    record["worker"] = {"host": socket.gethostname(), "pid": os.getpid()}
    return record


def _plan(task: RunTask, data: Any) -> Any:
    from archcalc.bench.protocol import plan_models
    from archcalc.spec.reader import parse_spec

    key = (task.spec_source, task.spec_text)
    if key not in _PLANS:
        spec = parse_spec(task.spec_text, task.spec_source, default_name=task.spec_name)
        _PLANS[key] = plan_models([spec], data, ["spec"])[0]
    return _PLANS[key]


def _safe_execute(task: RunTask, data: Any) -> dict[str, Any]:
    """``execute`` in another process: archcalc's errors come back as data, to be raised by the caller."""
    try:
        return execute(task, data)
    except ArchcalcError as exc:
        return {"error": str(exc), "kind": type(exc).__name__, "id": task.id}


def raise_if_error(record: dict[str, Any]) -> dict[str, Any]:
    if "error" in record:
        raise (DataError if record.get("kind") == "DataError" else UsageError)(f"{record['id']}: {record['error']}")
    return record


# --------------------------------------------------------------------------- here, one after another

def run_here(tasks: list[RunTask], data: Any, on_done: OnDone, progress: Progress | None = None) -> None:
    for task in tasks:
        on_done(execute(task, data, progress(task.id) if progress else None))


# --------------------------------------------------------------------------- --jobs N worker processes

def _init_worker(location: str, digest: str) -> None:
    import signal

    from archcalc.data.arrays import load_data

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the sweep's to handle: it ends the workers

    data = load_data(location)
    if data.digest() != digest:
        raise DataError(f"the data changed while the sweep started (digest {data.digest()}, expected {digest})",
                        source=location)
    _DATA[digest] = data


def _pool_execute(task: RunTask) -> dict[str, Any]:
    return _safe_execute(task, _DATA[task.data_digest])


def run_pool(tasks: list[RunTask], location: str, digest: str, jobs: int, on_done: OnDone) -> None:
    """``jobs`` worker processes (spawned: a fork of a process that already ran torch's thread pools
    can hang), each loading the data once from ``location``; runs are handed out as workers free up."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker, initargs=(location, digest))
    try:
        pending = {pool.submit(_pool_execute, task) for task in tasks}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                try:
                    on_done(raise_if_error(future.result()))
                except BrokenProcessPool:
                    raise UsageError("a --jobs worker process died (killed, or out of memory); the runs "
                                     "finished before are kept") from None
    finally:
        _stop_pool(pool)


def _stop_pool(pool: Any) -> None:
    """Cancel what has not started; end the workers (ours) rather than wait for their runs."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=10)


# --------------------------------------------------------------------------- --ray

RAY_MISSING = "--ray needs Ray, which is not installed: pip install 'archcalc[ray]'"
# Ray's switch between a node that can join a cluster of several machines (the default on Linux)
# and a node of this machine alone (the default on macOS and Windows): with it "0", Ray takes the
# loopback address as the node's address and every Ray service of the node listens on 127.0.0.1
# only. Ray reads it once, when it is imported.
LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def import_ray(local: bool = False) -> Any:
    """Ray, imported; ``local``: for a cluster of this machine alone, bound to the loopback address."""
    # Ray's C++ core logs each failed connection attempt to stderr; archcalc says what failed in one line
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "error")
    if local and "ray" not in sys.modules:
        os.environ.setdefault(LOCAL_ONLY_ENV, "0")
    try:
        import ray
    except ImportError:
        raise UsageError(RAY_MISSING) from None
    return ray


def _ray_execute(task: RunTask, data: Any) -> dict[str, Any]:
    import ray

    record = _safe_execute(task, data)
    if "worker" in record:  # several nodes may share a host name: the Ray node that ran the run
        record["worker"]["ray_node"] = ray.get_runtime_context().get_node_id()
    return record


@contextmanager
def ray_session(address: str | None) -> Iterator[Any]:
    """Ray connected: to ``address``, or to a local cluster started here on this machine's cores,
    listening on the loopback address only, without a dashboard and with Ray's token
    authentication on; shut down after."""
    ray = import_ray(local=not address)
    if ray.is_initialized():  # a caller (a test, a notebook) started Ray already: use it, leave it running
        yield ray
        return
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if not address:
        check_token_authentication(ray.__version__)
    # connecting to a running cluster starts no process here, so the stderr held back is Ray's client's
    with captured_stderr(address is not None) as logged:
        try:
            if address:
                ray.init(address=address, **options)
            else:
                ray.init(address="local", num_cpus=os.cpu_count() or 1, **options)
        except (ConnectionError, RuntimeError, ValueError, OSError, _ray_error(ray)) as exc:
            logged.failed = True
            where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
            reason = ""
            if "InvalidAuthToken" in logged.text() or "Unauthenticated" in logged.text():
                reason = (" (it refused this machine's authentication token: set RAY_AUTH_MODE=token and copy "
                          "the head's ~/.ray/auth_token here)")
            raise UsageError(f"cannot connect to {where}: {' '.join(str(exc).split())[:300]}{reason}") from None
    if not address:
        host = ray.get_runtime_context().gcs_address.rsplit(":", 1)[0].strip("[]")
        if not is_loopback(host):
            ray.shutdown()
            raise UsageError(f"the local Ray cluster took the address {host}, reachable from other machines: Ray "
                             f"was imported before archcalc could keep it on this machine (set {LOCAL_ONLY_ENV}=0 "
                             "before importing Ray, or start a cluster and pass its address)")
    try:
        yield ray
    finally:
        ray.shutdown()


def _ray_error(ray: Any) -> type[BaseException]:
    """Ray's own exception base (an authentication error is one), or one that never matches."""
    found = getattr(getattr(ray, "exceptions", None), "RayError", None)
    return found if isinstance(found, type) and issubclass(found, BaseException) else ConnectionError


class _Captured:
    def __init__(self, handle: Any) -> None:
        self.handle, self.failed = handle, False

    def text(self) -> str:
        if self.handle is None:
            return ""
        self.handle.flush()
        self.handle.seek(0)
        return self.handle.read().decode(errors="replace")  # type: ignore[no-any-return]


@contextmanager
def captured_stderr(active: bool = True) -> Iterator[_Captured]:
    """What Ray's C++ core writes to the process's stderr while connecting (a line per failed attempt,
    whatever the log level), held back: given back as it was when the connection works, left out
    when it fails, where archcalc says in one line what failed."""
    import tempfile

    if not active:
        yield _Captured(None)
        return
    sys.stderr.flush()
    with tempfile.TemporaryFile() as handle:
        saved = os.dup(2)
        os.dup2(handle.fileno(), 2)
        captured = _Captured(handle)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if not captured.failed:
                text = captured.text()
                if text:
                    sys.stderr.write(text)
                    sys.stderr.flush()


def is_loopback(host: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


TOKEN_BY_DEFAULT = (2, 59)  # the first Ray whose local clusters turn token authentication on by themselves


def check_token_authentication(version: str) -> None:
    """Refuse to start a local cluster without Ray's token authentication: a cluster runs whatever
    code it is sent, and any process of this machine can reach its ports."""
    mode = os.environ.get("RAY_AUTH_MODE")
    if mode is not None and mode != "token":
        raise UsageError(f"RAY_AUTH_MODE={mode} turns Ray's token authentication off: a local cluster would run "
                         "code sent by anyone who reaches its ports; unset it")
    numbers = tuple(int(part) for part in re.findall(r"\d+", version)[:2])
    if mode is None and numbers < TOKEN_BY_DEFAULT:
        raise UsageError(f"Ray {version} starts local clusters without token authentication: pip install "
                         "'ray>=2.59', or set RAY_AUTH_MODE=token")


def run_ray(tasks: list[RunTask], data: Any, threads: int, gpus: float, on_done: OnDone, address: str | None,
            retries: int = 3) -> dict[str, Any]:
    """Every run a Ray task asking for ``threads`` CPUs (and ``gpus`` GPUs); the data is put in the
    object store once. Ray re-runs a task whose worker died (up to ``retries`` times). Returns what
    the cluster offered: its address and resources."""
    with ray_session(address) as ray:
        data_ref = ray.put(data)
        # SPREAD: runs go to every node of a cluster from the start, rather than filling this one first
        remote = ray.remote(_ray_execute).options(num_cpus=threads, num_gpus=gpus, max_retries=retries,
                                                  name="archcalc_run", scheduling_strategy="SPREAD")
        pending = [remote.remote(task, data_ref) for task in tasks]
        cluster = {"address": ray.get_runtime_context().gcs_address,
                   "resources": {k: v for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU")}}
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                for ref in done:
                    try:
                        record = ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                        raise UsageError(f"a Ray task failed after {retries} retries ({first[:200]}); the runs "
                                         "finished before are kept") from None
                    on_done(raise_if_error(record))
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
    return cluster
