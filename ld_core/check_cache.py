"""Passed checks remembered per file identity (path, size, mtime) and what the file was checked against: the
weight checks of the Snakefile's parse (:mod:`ld_core.config.weights`) and the class lists of the user's
annotation files (:mod:`ld_core.config.dataset_file`)."""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Callable, Tuple

from .files import atomic_write_json

CHECK_VERSION = 1  # bump when what a check accepts changes: cached verdicts of older checks are not reused


class CheckCache:
    """Passed checks, one JSON file each in a folder (e.g. ``<results>/checks/weights/``), keyed by file identity +
    what it was checked against. A file changed in place (size or mtime) or a different model is checked again."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    @staticmethod
    def key(kind: str, path: str | Path, spec) -> str:
        st = Path(path).stat()
        ident = dict(kind=kind, file=str(Path(path).resolve()), size=st.st_size, mtime_ns=st.st_mtime_ns,
                     spec=spec, version=CHECK_VERSION)
        return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:32]

    def get(self, kind: str, path, spec):
        entry = self.folder / f"{self.key(kind, path, spec)}.json"
        try:
            return json.loads(entry.read_text())["summary"]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, kind: str, path, spec, summary: str, seconds: float) -> None:
        try:
            atomic_write_json(self.folder / f"{self.key(kind, path, spec)}.json",
                              dict(kind=kind, file=str(path), summary=summary, seconds=round(seconds, 2),
                                   checked=time.strftime("%Y-%m-%d %H:%M:%S")))
        except OSError:  # a read-only results folder: the check still passed, it is only not remembered
            pass

    def check(self, kind: str, path, spec, run: Callable[[], str]) -> Tuple[str, bool]:
        """(summary, cached?) of a check: the cached verdict, or ``run()`` (raising on a problem) remembered."""
        hit = self.get(kind, path, spec)
        if hit is not None:
            return hit, True
        start = time.perf_counter()
        summary = run()
        self.put(kind, path, spec, summary, time.perf_counter() - start)
        return summary, False
