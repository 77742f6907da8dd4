"""User-facing errors: each carries one line that names the file and the problem; the words they share."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Type


class LDError(Exception):
    """Base class: the command line prints ``error: <message>`` and exits with status 2."""


class ConfigError(LDError):
    """A pipeline/experiment config is invalid (unknown key, bad value, missing run)."""


class DataError(LDError):
    """A dataset path or annotation file is missing or malformed."""


class TeacherMismatchError(LDError):
    """A teacher cannot distil into a student (reg_max, strides, anchors or classes differ)."""


def one_line(exc: BaseException) -> str:
    """An exception's whole message on one line (all white space, newlines included, folded to single spaces)."""
    return " ".join(str(exc).split())


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, white space folded; the exception's type name if it has none."""
    text = str(exc).strip()
    return " ".join(text.splitlines()[0].split()) if text else type(exc).__name__


def name_list(items: Iterable) -> str:
    """``a, b, c`` (the known names a message offers), ``none`` for none."""
    return ", ".join(str(i) for i in items) or "none"


def require_file(path: str | os.PathLike, what: str, error: Type[LDError] = ConfigError, hint: str = "") -> Path:
    """``path`` as a Path if it is a file, else ``error("<path>: <what> does not exist[ (<hint>)]")``."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: {what} does not exist" + (f" ({hint})" if hint else ""))
    return path


def require_dir(path: str | os.PathLike, what: str, error: Type[LDError] = ConfigError, hint: str = "") -> Path:
    """``path`` as a Path if it is a folder, else ``error("<path>: <what> does not exist[ (<hint>)]")``."""
    path = Path(path)
    if not path.is_dir():
        raise error(f"{path}: {what} does not exist" + (f" ({hint})" if hint else ""))
    return path
