"""A full disk under $LD_TEST_FULL_DISK, for `python -m ld_core` processes only (tests/workflow/test_fresh_machine.py).

Put this folder first on PYTHONPATH: every file opened for writing below that folder (``open``, ``io.open``,
``os.fdopen``) fails its first write with ``OSError(ENOSPC)``, as on a full disk. Other processes (Snakemake
itself) are untouched.
"""
import builtins
import errno
import io
import os
import sys

_FULL = os.environ.get("LD_TEST_FULL_DISK")


class _FullDiskFile:
    def __init__(self, handle):
        self._handle = handle

    def write(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._handle.close()


def _on_full_disk(path, mode) -> bool:
    if not isinstance(mode, str) or not any(c in mode for c in "wax+"):
        return False
    try:
        real = os.path.realpath(path)
    except (TypeError, OSError):
        return False
    return real == os.path.realpath(_FULL) or real.startswith(os.path.realpath(_FULL) + os.sep)


if _FULL and "ld_core" in getattr(sys, "orig_argv", []):
    _open, _fdopen = builtins.open, os.fdopen

    def open_(file, mode="r", *args, **kwargs):
        handle = _open(file, mode, *args, **kwargs)
        return _FullDiskFile(handle) if not isinstance(file, int) and _on_full_disk(file, mode) else handle

    def fdopen(fd, mode="r", *args, **kwargs):
        handle = _fdopen(fd, mode, *args, **kwargs)
        return _FullDiskFile(handle) if _on_full_disk(f"/proc/self/fd/{fd}", mode) else handle

    builtins.open = io.open = open_
    os.fdopen = fdopen
