"""ld_core.errors: the error classes' shared words (one line of an exception, a missing file or folder)."""
from __future__ import annotations

import pytest

from ld_core.errors import ConfigError, DataError, first_line, name_list, one_line, require_dir, require_file


def test_one_line_and_first_line():
    exc = ValueError("bad value\n  at line 3\tcolumn 4")
    assert one_line(exc) == "bad value at line 3 column 4"
    assert first_line(exc) == "bad value"
    assert first_line(RuntimeError("")) == "RuntimeError" and one_line(RuntimeError("")) == ""


def test_name_list():
    assert name_list(["a", "b"]) == "a, b" and name_list({"x": 1}) == "x" and name_list([]) == "none"


def test_require_file_and_dir(tmp_path):
    f = tmp_path / "a.csv"
    f.write_text("x\n")
    assert require_file(str(f), "table CSV") == f and require_dir(tmp_path, "folder") == tmp_path
    with pytest.raises(ConfigError, match=r"^.*nope\.yaml: claims file does not exist$"):
        require_file(tmp_path / "nope.yaml", "claims file")
    with pytest.raises(ConfigError, match=r"a\.csv: results folder does not exist \(run the DAG first\)$"):
        require_dir(f, "results folder", hint="run the DAG first")  # a file is not a folder
    with pytest.raises(DataError, match=r"does not exist$"):
        require_file(tmp_path, "metrics file", DataError)  # nor a folder a file
