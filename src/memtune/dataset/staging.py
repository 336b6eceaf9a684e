"""Where a bundle is built and how it is swapped in, and how long export workers live.

A bundle is written into ``.NAME.tmp-PID-HEX`` beside the target, locked (``flock``) by the
exporting process for as long as it works on it, and swapped in with one atomic exchange
where the system has one (Linux ``renameat2(RENAME_EXCHANGE)``), so a reader never finds
the target missing. A temp dir nobody holds, whose process is gone, was left by a killed
export and is removed by the next one. Worker processes exit as soon as the exporting
process dies, even by SIGKILL, so none is left blocked on a queue nobody feeds.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import signal
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_PR_SET_PDEATHSIG = 1
PARENT_POLL_S = 0.5


# ------------------------------------------------------------------ temp dirs
def make_temp(out: Path) -> tuple[Path, int | None]:
    """Create and lock the temp dir for ``out``; returns it and the lock's fd (None: no locking here)."""
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    fd = None
    if fcntl is not None:
        try:
            fd = os.open(tmp, os.O_RDONLY)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # a file system without flock: the pid check alone decides
            if fd is not None:
                os.close(fd)
            fd = None
    return tmp, fd


def release(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)


def remove_stale_temps(out: Path) -> list[Path]:
    """Remove temp dirs of exports that were killed: nobody holds their lock and their process is gone."""
    removed = []
    for p in out.parent.glob(f".{out.name}.tmp-*"):
        try:
            pid = int(p.name.split(".tmp-", 1)[1].split("-", 1)[0])
        except (IndexError, ValueError):
            continue
        if not p.is_dir() or p.is_symlink() or pid_alive(pid) or _still_locked(p):
            continue
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    return removed


DYING_WORKERS_S = 3.0
"""How long a dead export's workers may take to exit (and drop its lock) before its temp dir is
left for a later export: they get SIGKILL with their parent, but exiting a big process under
load can take a moment."""


def _still_locked(path: Path) -> bool:
    """``path``'s lock is held and stays held for :data:`DYING_WORKERS_S` (its exporter is dead)."""
    deadline = time.monotonic() + DYING_WORKERS_S
    while _locked(path):
        if time.monotonic() >= deadline:
            return True
        time.sleep(0.05)
    return False


def _locked(path: Path) -> bool:
    """Whether a live process (an export or one of its workers) holds ``path``'s lock."""
    if fcntl is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return True  # cannot look: leave it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False  # no flock on this file system: the pid check decides
    finally:
        os.close(fd)
    return False


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a running process (a zombie, killed but not yet reaped, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]


# ------------------------------------------------------------------ swapping in
def swap_into_place(tmp: Path, out: Path) -> None:
    """Put the finished bundle ``tmp`` at ``out``; the old bundle is removed only afterwards.

    With an atomic exchange ``out`` always names a whole bundle, old or new. Without one
    (other systems, some file systems) the old bundle is renamed aside first, leaving a
    moment in which ``out`` is missing.
    """
    if not out.exists():
        os.replace(tmp, out)
        return
    if _exchange(tmp, out):
        if tmp.is_symlink():  # the target was a link to a bundle: drop the link, not what it points at
            tmp.unlink()
        else:
            shutil.rmtree(tmp, ignore_errors=True)  # now holds the old bundle
        return
    old = out.parent / f".{out.name}.tmp-{os.getpid()}-old{uuid.uuid4().hex[:8]}"
    os.replace(out, old)
    try:
        os.replace(tmp, out)
    except OSError:
        os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


_renameat2: Any = None


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths; False where the system or file system cannot."""
    global _renameat2
    if not sys.platform.startswith("linux"):
        return False
    if _renameat2 is None:
        try:
            fn = ctypes.CDLL(None, use_errno=True).renameat2
        except (OSError, AttributeError):  # glibc < 2.28, musl
            _renameat2 = False
            return False
        fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        fn.restype = ctypes.c_int
        _renameat2 = fn
    if _renameat2 is False:
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOENT):
        return False  # no exchange here (or the target vanished): plain renames
    raise OSError(err, os.strerror(err), str(b))


# ------------------------------------------------------------------ worker lifetime
def worker_init(parent: int) -> None:
    """ProcessPoolExecutor initializer: die with the exporting process.

    A worker whose parent is SIGKILLed would otherwise wait forever on the task queue,
    holding the (deleted) temp files it inherited. Linux delivers SIGKILL at once through
    PR_SET_PDEATHSIG; everywhere a daemon thread also notices the new parent within
    PARENT_POLL_S and exits.
    """
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the thread below suffices
            pass
    if os.getppid() != parent:  # the parent died before the death signal was armed
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), name="memtune-parent-watch", daemon=True).start()


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(PARENT_POLL_S)
        if os.getppid() != parent:
            os._exit(1)


__all__ = ["make_temp", "pid_alive", "release", "remove_stale_temps", "swap_into_place", "worker_init"]
