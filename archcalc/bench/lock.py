"""One bench per results folder: a lock file holding the running bench's process id.

The lock is created with ``O_CREAT | O_EXCL``, so of two benches started at once exactly one gets
it. A lock whose process is gone (a bench that was killed) is stale and is taken over.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from archcalc.errors import UsageError

LOCK_NAME = "bench.lock"


@contextmanager
def folder_lock(folder: Path) -> Iterator[Path]:
    """Hold ``folder/bench.lock`` while the block runs; UsageError names the pid of another holder."""
    path = Path(folder) / LOCK_NAME
    _acquire(path)
    try:
        yield path
    finally:
        if _read(path) == (os.getpid(), socket.gethostname()):
            path.unlink(missing_ok=True)


def _acquire(path: Path) -> None:
    for _ in range(5):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _wait_for_holder(path)
            if holder is None:
                continue  # removed meanwhile: try again
            pid, host = holder
            if pid is None or host not in (None, socket.gethostname()) or _alive(pid):
                raise UsageError(_held_message(path, pid, host), source=str(path.parent)) from None
            _take_over(path, holder)
            continue
        except OSError as exc:
            raise UsageError(f"cannot create the lock file {path.name} ({exc.strerror})",
                             source=str(path.parent)) from None
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{os.getpid()}\n{socket.gethostname()}\n")
        return
    raise UsageError(f"cannot take the lock file {path.name}: other benches keep taking it",
                     source=str(path.parent))


def _held_message(path: Path, pid: int | None, host: str | None) -> str:
    who = f"pid {pid}" + (f" on {host}" if host and host != socket.gethostname() else "") if pid else \
        "a process whose id the lock file does not hold"
    return (f"another bench ({who}) is writing results in this folder (lock file {path.name}); wait for "
            f"it to end or use another --out folder (if no such bench runs, remove {path})")


def _read(path: Path) -> tuple[int | None, str | None] | None:
    """(pid, host) from the lock file; None when there is no file; pid None when it is not readable."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    except FileNotFoundError:
        return None
    except OSError:
        return (None, None)
    pid = int(lines[0]) if lines[0].strip().isdigit() and int(lines[0]) > 0 else None
    host = lines[1].strip() or None if len(lines) > 1 else None
    return (pid, host)


def _wait_for_holder(path: Path) -> tuple[int | None, str | None] | None:
    """The holder; a lock file just created may not hold its pid yet, so wait a moment for it."""
    holder = _read(path)
    for _ in range(20):
        if holder is None or holder[0] is not None:
            break
        time.sleep(0.05)
        holder = _read(path)
    return holder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def _take_over(path: Path, stale: tuple[int | None, str | None]) -> None:
    """Move the stale lock aside and delete it; a fresh lock moved by mistake (a race) is put back."""
    aside = path.with_name(f".{path.name}.stale.{os.getpid()}")
    try:
        os.replace(path, aside)
    except FileNotFoundError:
        return  # another bench took it over first
    if _read(aside) != stale:
        try:
            os.link(aside, path)  # a live bench's lock: restore it unless yet another lock is there
        except OSError:
            pass
    aside.unlink(missing_ok=True)
