"""Atomic file output: a reader never sees a half-written result."""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


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

    from .errors import ConfigError

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: {what} does not exist")
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
        raise ConfigError(f"{path}: malformed YAML{where}: {problem}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read {what} ({' '.join(str(exc).split())})") from None


def atomic_write_files(outputs: dict) -> None:
    """Write several files ({path: str | bytes}) as a unit: each atomically, and if one fails the ones
    already written are restored (or removed), so no mix of old and new outputs remains.
    A filesystem error becomes a one-line ``DataError`` naming the file."""
    from .errors import DataError

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
            reason = exc.strerror or " ".join(str(exc).split())
            raise DataError(f"{getattr(exc, 'filename', None) or path}: cannot write ({reason})") from None
        raise
