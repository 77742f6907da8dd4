"""The split of the test suite: tests/unit never starts Snakemake (`make test-unit`, the quick loop), every file of
tests/workflow does, and a test file imports test modules of its own folder only (each file runs on its own)."""
from __future__ import annotations

import ast
import re

import pytest

from helpers import ROOT

TESTS = ROOT / "tests"
# a Snakemake command line: the shared prefix, `python -m snakemake`, or a venv's snakemake executable
STARTS_SNAKEMAKE = re.compile(r'\bSNAKEMAKE\b|"-m",\s*"snakemake"|"bin"\s*/\s*"snakemake"')


def _files(folder: str) -> list:
    return sorted((TESTS / folder).glob("test_*.py"))


def test_unit_files_never_start_snakemake():
    found = [f"{path.relative_to(ROOT)}: {m.group(0)}" for path in _files("unit")
             for m in [STARTS_SNAKEMAKE.search(path.read_text())] if m]
    assert found == [], f"move these tests to tests/workflow/: {found}"


def test_every_workflow_file_starts_snakemake():
    idle = [str(path.relative_to(ROOT)) for path in _files("workflow") if not STARTS_SNAKEMAKE.search(path.read_text())]
    assert idle == [], f"no Snakemake run here: move these to tests/unit/: {idle}"


@pytest.mark.parametrize("folder", ["unit", "workflow"])
def test_test_modules_are_imported_from_their_own_folder_only(folder):
    """A helper shared across folders lives in tests/helpers.py, tests/weight_files.py or a conftest fixture."""
    wrong = []
    for path in _files(folder):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            wrong += [f"{path.relative_to(ROOT)}: {name}" for name in names
                      if name.startswith("test_") and not (path.parent / f"{name}.py").is_file()]
    assert wrong == [], wrong
