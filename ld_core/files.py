"""Atomic file output (a reader never sees a half-written result), the results folder's lock, and the one
dependency cache the jobs share (yapf's grammar)."""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from .errors import ConfigError, DataError, LDError, one_line, require_file


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file to write ``path`` through: a temporary file of a unique name in the same folder
    (``.<name>.<random>.tmp``: two writers never share one), renamed over ``path`` when the block ends, removed
    when it raises (a full disk, an interrupt). Closed (flushed) before the rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno is not None and exc.filename is None:  # a write: name the file
            raise OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path)) from exc
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and an atomic rename."""
    with atomic_output(path) as handle:
        handle.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def load_yaml_file(path: str | os.PathLike, what: str) -> Any:
    """Parse a YAML file (libyaml's safe loader when available); a missing, unreadable or malformed file is a
    one-line ``ConfigError`` naming it."""
    import yaml

    path = require_file(path, what)
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or one_line(exc)
        raise ConfigError(f"{path}: malformed YAML{where}: {problem}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read {what} ({one_line(exc)})") from None


def atomic_write_files(outputs: dict) -> None:
    """Write several files ({path: str | bytes}) as a unit: each atomically, and if one fails the ones
    already written are restored (or removed), so no mix of old and new outputs remains.
    A filesystem error becomes a one-line ``DataError`` naming the file."""
    done = []
    path = None
    try:
        for path, data in outputs.items():
            path = Path(path)
            previous = path.read_bytes() if path.is_file() else None
            atomic_write_bytes(path, data.encode("utf-8") if isinstance(data, str) else data)
            done.append((path, previous))
    except BaseException as exc:
        for written, previous in reversed(done):
            try:
                if previous is None:
                    written.unlink(missing_ok=True)
                else:
                    atomic_write_bytes(written, previous)
            except OSError:
                pass
        if isinstance(exc, OSError):
            reason = exc.strerror or one_line(exc)
            raise DataError(f"{getattr(exc, 'filename', None) or path}: cannot write ({reason})") from None
        raise


# ------------------------------------------------------------------------------------------- the results lock

RESULTS_LOCK = ".ld-repro.lock"  # in the results folder
_HELD: dict = {}  # lock file -> its open handle, for the life of this process


def lock_results(folder: str | os.PathLike) -> str:
    """Hold ``<folder>/.ld-repro.lock`` (``flock``, exclusive) until this process ends: one Snakemake main
    process per results folder, whatever its working directory. The kernel drops the lock when its holder
    dies, however it dies, so a lock left by a crashed run is taken over. Returns what a dead holder had
    written there ('' if nothing: the last holder ended normally). Held: a one-line ``LDError`` naming the
    lock file and its holder (pid, host, working directory, start)."""
    import atexit
    import fcntl
    import socket
    import time

    folder = Path(folder)
    path = folder / RESULTS_LOCK
    if str(path.resolve()) in _HELD:
        return ""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+", encoding="utf-8")  # not truncated before it is ours
    except OSError as exc:
        raise LDError(f"{path}: cannot create the results lock ({exc.strerror or exc})") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        handle.seek(0)
        holder = " ".join(handle.read().split())
        handle.close()
        if isinstance(exc, BlockingIOError):
            raise LDError(f"{path}: results folder {folder} is in use by another Snakemake "
                          f"({holder or 'no details written yet'}); wait for it to end, or give this run "
                          "another results=") from None
        raise LDError(f"{path}: cannot lock the results folder ({exc.strerror or exc}; `snakemake --nolock` "
                      "runs without this lock, at your own risk)") from None
    handle.seek(0)
    previous = " ".join(handle.read().split())
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {socket.gethostname()}, working directory {os.getcwd()}, since "
                 f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    handle.flush()
    _HELD[str(path.resolve())] = handle

    def release() -> None:  # a normal end leaves an empty file: what remains after a crash is news
        try:
            handle.seek(0)
            handle.truncate()
            handle.close()
        except OSError:
            pass

    atexit.register(release)
    return previous


# ------------------------------------------------------------------------------------------- yapf's grammar cache

def load_yapf_grammar() -> None:
    """Import yapf (which mmengine's ``Config`` imports) under a lock on its cache folder.

    On its first import yapf 0.4x pickles its grammars into ``<user cache>/YAPF/<version>/`` (``platformdirs``,
    ~/.cache/YAPF on Linux) and renames the pickle into place before closing (flushing) it, so another process
    that imports yapf at that moment reads a half-written file: ``EOFError: Ran out of input`` (two jobs of a
    fresh environment, or of a cluster with a shared home). With this lock held, the one process that writes
    the cache finishes before any other reads it; afterwards yapf only reads. A cache folder that cannot be
    created or locked (read-only home) changes nothing: yapf then skips writing its cache too."""
    import sys

    if "yapf" in sys.modules:
        return
    try:
        import fcntl

        from platformdirs import user_cache_dir
    except ImportError:
        return
    handle = None
    try:
        folder = Path(user_cache_dir("YAPF", "Google"))
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(folder / ".ld-repro.lock", "a")
        fcntl.flock(handle, fcntl.LOCK_EX)
    except OSError:
        pass
    try:
        try:
            import yapf  # noqa: F401  (loads, or first writes, the grammar pickles)
        except ImportError:
            pass
        except Exception:  # a pickle cut short by an earlier run killed mid-write: written anew
            for pickle_file in Path(user_cache_dir("YAPF", "Google")).glob("*/*.pickle"):
                pickle_file.unlink(missing_ok=True)
            import yapf  # noqa: F401,F811
    finally:
        if handle is not None:
            handle.close()  # releases the lock
