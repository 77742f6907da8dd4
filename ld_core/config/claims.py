"""The supplement's claims (``configs/claims.yaml``, ``--config claims=...``): read and checked once.

:func:`load_claims` checks the file against ``workflow/schemas/claims.schema.yaml``, then each claim against the
experiment matrix (``table`` is a table of it, ``better`` / ``than`` rows of that table, ``metrics`` its metrics)
and the paper's numbers (:class:`~ld_core.config.paper.PaperTable`: every compared cell, unless ``ours_only``),
and returns :class:`Claim` objects. The Snakefile (:func:`ld_core.config.file_checks.validate_files`, at parse time)
and the ``scorecard`` command load the claims through this one function; the scorecard checks nothing again. The
first problem is a one-line :class:`~ld_core.errors.ConfigError` ``<file>: claims[<i>].<key>: <problem>``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Mapping, Optional, Tuple

from ..errors import ConfigError, name_list
from ..files import load_yaml_file
from .paper import PaperTable, row_ids


@dataclass(frozen=True)
class Claim:
    """One claim: every ``better`` row beats the ``than`` row of ``table`` at every metric (``>=`` with
    ``allow_equal``); ``ours_only``: it compares rows the paper does not have. Names stripped, ``text`` on one
    line."""

    id: str
    table: str
    text: str
    better: Tuple[str, ...]
    than: str
    metrics: Tuple[str, ...]
    allow_equal: bool = False
    ours_only: bool = False


def _as_list(value) -> List[Tuple[Optional[int], str]]:
    """(index, item) of a list, or (None, value) of one string (claims accept a single row/metric)."""
    return [(None, value)] if isinstance(value, str) else list(enumerate(value))


def load_claims(path, tables: Mapping[str, Mapping], matrix_path, paper: PaperTable,
                schema_set) -> Tuple[Claim, ...]:
    """The claims file at ``path``, checked against its schema (``schema_set``:
    :class:`ld_core.config.file_checks.Schemas`), the matrix's ``tables`` (of the file ``matrix_path``, named in
    messages) and ``paper``; the first problem is a one-line ConfigError."""
    path = Path(path)
    raw = schema_set.check("claims", load_yaml_file(path, "claims file"), path)
    claims, ids = [], {}
    for i, item in enumerate(raw["claims"]):
        where = f"claims[{i}]"
        cid = item["id"].strip()
        if cid in ids:
            raise ConfigError(f"{path}: {where}.id: duplicate id '{cid}' (also claims[{ids[cid]}])")
        ids[cid] = i
        tid = item["table"]
        if tid not in tables:
            raise ConfigError(f"{path}: {where}.table: '{tid}' is not a table of the matrix {matrix_path} "
                              f"(tables: {name_list(tables)})")
        rows, metrics = row_ids(tables[tid]), tables[tid]["metrics"]
        better = [(f"{where}.better" + ("" if j is None else f"[{j}]"), r.strip())
                  for j, r in _as_list(item["better"])]
        than = item["than"].strip()
        for key, row in [*better, (f"{where}.than", than)]:
            if row not in rows:
                raise ConfigError(f"{path}: {key}: row '{row}' is not a row of {tid} (rows: {name_list(rows)})")
        if than in [row for _, row in better]:
            raise ConfigError(f"{path}: {where}.than: row '{than}' is both in 'better' and 'than'")
        names = []
        for j, metric in _as_list(item["metrics"]):
            key, metric = f"{where}.metrics" + ("" if j is None else f"[{j}]"), metric.strip()
            if metric not in metrics:
                raise ConfigError(f"{path}: {key}: '{metric}' is not a metric of {tid} "
                                  f"(metrics: {name_list(metrics)})")
            for row in [] if item.get("ours_only") else [row for _, row in better] + [than]:
                if not paper.has(tid, row, metric):
                    raise ConfigError(f"{path}: {key}: the paper ({paper.path}) has no {metric} for row '{row}' "
                                      f"of {tid}")
            names.append(metric)
        claims.append(Claim(id=cid, table=tid, text=" ".join(item["text"].split()),
                            better=tuple(row for _, row in better), than=than, metrics=tuple(names),
                            allow_equal=item.get("allow_equal", False), ours_only=item.get("ours_only", False)))
    return tuple(claims)
