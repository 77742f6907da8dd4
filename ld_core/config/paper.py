"""The paper's numbers (``configs/paper_tables.csv``, ``--config paper_tables=...``): read and checked once.

:func:`load_paper` reads the CSV (spaces after a comma skipped, blank lines ignored), checks every row against
``workflow/schemas/paper_tables.schema.yaml`` (the schema of ONE row; ``table`` and ``value`` are parsed as
numbers first), then against the experiment matrix: table N is ``tableN`` of the matrix, ``row`` a row of it,
``metric`` one of its ``metrics`` (or ``paper_metrics`` names), no (table, row, metric) twice. It returns a
:class:`PaperTable`. The Snakefile (:func:`ld_core.config.file_checks.validate_files`, at parse time) and the report
commands (``table``, ``scorecard``) load it through this one function; the reports check nothing again. The first
problem is a one-line :class:`~ld_core.errors.ConfigError` ``<file>: line <n>, column '<name>': <problem>`` (the
header is line 1).
"""
from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Dict, List, Mapping, Tuple

from ..errors import ConfigError, name_list, one_line, require_file

KEY_COLUMNS = ("table", "row", "metric", "value")  # the others are descriptive (dataset, detector, ...)


@dataclass(frozen=True)
class PaperCell:
    """One published value; ``info``: its descriptive columns as written (header order); ``line``: in the file."""

    table: str  # tableN
    row: str
    metric: str
    value: float
    line: int
    info: Tuple[Tuple[str, str], ...] = ()


@dataclass(frozen=True)
class PaperTable:
    """The published values of the paper's tables (file order) and the file's columns (header order)."""

    path: Path
    columns: Tuple[str, ...]
    cells: Tuple[PaperCell, ...]

    @property
    def descriptive(self) -> Tuple[str, ...]:
        """The columns other than table, row, metric and value."""
        return tuple(c for c in self.columns if c not in KEY_COLUMNS)

    @cached_property
    def _index(self) -> Dict[Tuple[str, str, str], PaperCell]:
        return {(c.table, c.row, c.metric): c for c in self.cells}

    def has(self, table: str, row: str, metric: str) -> bool:
        return (table, row, metric) in self._index

    def value(self, table: str, row: str, metric: str) -> float:
        """The published value of a cell; NaN where the paper has none."""
        cell = self._index.get((table, row, metric))
        return math.nan if cell is None else cell.value

    def of_table(self, table: str) -> Tuple[PaperCell, ...]:
        return tuple(c for c in self.cells if c.table == table)

    def dataset_of(self, table: str) -> str:
        """The ``dataset`` column's names of a table (``coco_val2017``), ``""`` without that column."""
        return ", ".join(dict.fromkeys(v for c in self.of_table(table) for k, v in c.info if k == "dataset" and v))


def row_ids(table: Mapping) -> List[str]:
    """The ``row`` ids of a table of the matrix, in order."""
    return [row["row"] for row in table["rows"]]


def _coerce(text: str, types) -> object:
    """A CSV cell as the schema's integer/number type when it parses as one (else the string: a type error)."""
    types = [types] if isinstance(types, str) else list(types or [])
    s = text.strip()
    if "integer" in types and re.fullmatch(r"[+-]?\d+", s):
        return int(s)
    if "number" in types:
        try:
            number = float(s)
        except ValueError:
            return text
        return number if math.isfinite(number) else text
    return s


def _read_rows(path: Path, schema_set) -> Tuple[List[str], List[Tuple[int, dict, dict]]]:
    """(header, [(line number, checked row, the row's cells as written)]) of the CSV, each row checked against the
    row schema (``schema_set``: :class:`ld_core.config.file_checks.Schemas`)."""
    require_file(path, "paper values file")
    try:
        lines = list(csv.reader(path.read_text(encoding="utf-8").splitlines(), skipinitialspace=True))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"{path}: cannot read the paper values ({one_line(exc)})") from None
    schema = schema_set.schemas["paper_tables"]
    props, required = schema.get("properties", {}), list(schema.get("required", []))
    numbered = [(i, row) for i, row in enumerate(lines, start=1) if any(c.strip() for c in row)]
    if not numbered:
        raise ConfigError(f"{path}: empty file (expected the header {','.join(props)})")
    header_line, header = numbered[0]
    header = [c.strip() for c in header]
    for col in header:
        if header.count(col) > 1:
            raise ConfigError(f"{path}: line {header_line}: duplicate column '{col}'")
        if col not in props and schema.get("additionalProperties") is False:
            raise ConfigError(f"{path}: line {header_line}: unknown column '{col}' (allowed: {', '.join(props)})")
    for col in required:
        if col not in header:
            raise ConfigError(f"{path}: line {header_line}: missing column '{col}' (required: {', '.join(required)})")
    rows = []
    for line, fields in numbered[1:]:
        if len(fields) != len(header):
            raise ConfigError(f"{path}: line {line}: {len(fields)} fields for the {len(header)} columns of the "
                              f"header ({','.join(header)})")
        row = {col: _coerce(text, props.get(col, {}).get("type")) for col, text in zip(header, fields)}
        problem = schema_set.first_problem("paper_tables", row)
        if problem is not None:
            parts, text = problem
            where = f"line {line}, column '{parts[0]}'" if parts else f"line {line}"
            raise ConfigError(f"{path}: {where}: {text}")
        rows.append((line, row, dict(zip(header, fields))))
    return header, rows


def load_paper(path, tables: Mapping[str, Mapping], matrix_path, schema_set) -> PaperTable:
    """The paper CSV at ``path``, checked against its row schema (``schema_set``:
    :class:`ld_core.config.file_checks.Schemas`) and the matrix's ``tables`` (of the file ``matrix_path``, named in
    messages); the first problem is a one-line ConfigError."""
    path = Path(path)
    header, rows = _read_rows(path, schema_set)
    cells: Dict[Tuple[str, str, str], PaperCell] = {}
    for line, rec, written in rows:
        tid, row, metric = f"table{rec['table']}", rec["row"].strip(), rec["metric"].strip()
        if tid not in tables:
            raise ConfigError(f"{path}: line {line}, column 'table': {rec['table']} ({tid}) is not a table of the "
                              f"matrix {matrix_path} (tables: {name_list(tables)})")
        table = tables[tid]
        if row not in row_ids(table):
            raise ConfigError(f"{path}: line {line}, column 'row': row '{row}' is not a row of {tid} "
                              f"(rows: {name_list(row_ids(table))})")
        known = list(dict.fromkeys([*table["metrics"], *(table.get("paper_metrics") or {}).values()]))
        if metric not in known:
            raise ConfigError(f"{path}: line {line}, column 'metric': '{metric}' is not a metric of {tid} "
                              f"(metrics: {name_list(known)})")
        if (tid, row, metric) in cells:
            raise ConfigError(f"{path}: line {line}: duplicate value for {tid}, row '{row}', metric '{metric}' "
                              f"(first on line {cells[(tid, row, metric)].line})")
        info = tuple((col, written[col]) for col in header if col not in KEY_COLUMNS)
        cells[(tid, row, metric)] = PaperCell(table=tid, row=row, metric=metric, value=float(rec["value"]),
                                              line=line, info=info)
    return PaperTable(path=path, columns=tuple(header), cells=tuple(cells.values()))
