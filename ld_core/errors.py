"""User-facing errors: each carries one line that names the file and the problem."""


class LDError(Exception):
    """Base class: the command line prints ``error: <message>`` and exits with status 2."""


class ConfigError(LDError):
    """A pipeline/experiment config is invalid (unknown key, bad value, missing run)."""


class DataError(LDError):
    """A dataset path or annotation file is missing or malformed."""


class TeacherMismatchError(LDError):
    """A teacher cannot distil into a student (reg_max, strides, anchors or classes differ)."""
