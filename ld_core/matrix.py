"""The experiment matrix (configs/experiments.yaml): runs declared once, tables referencing them by id."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

from .errors import ConfigError
from .io import load_yaml_file

BACKBONES = {"R-18": 18, "R-34": 34, "R-50": 50, "R-101": 101}
DETECTORS = ("gfl",)
DATASETS = ("coco",)
RUN_KEYS = {"detector", "backbone", "dataset", "schedule", "seed", "teacher", "distill", "notes"}
DISTILL_KEYS = {"ld", "gt_box_losses", "ld_weight", "temperature", "ld_normalize", "true_kl"}
TABLE_KEYS = {"caption", "columns", "metrics", "rows"}
FIGURE_KEYS = {"baseline", "ld"}
ROW_KEYS = {"row", "run", "cells"}


@dataclass(frozen=True)
class Run:
    """One training run of the matrix (replicated over the pipeline seeds unless ``seed`` is fixed)."""

    id: str
    detector: str
    backbone: str
    dataset: str
    schedule: str
    seed: Optional[int] = None
    teacher: Optional[str] = None
    distill: dict = field(default_factory=dict)

    @property
    def depth(self) -> int:
        return BACKBONES[self.backbone]

    def seeds(self, pipeline_seeds: Iterable[int]) -> List[int]:
        """The seeds this run is trained with."""
        return [self.seed] if self.seed is not None else list(pipeline_seeds)


@dataclass
class Matrix:
    """Runs and tables of the experiment matrix file."""

    path: Path
    runs: Dict[str, Run]
    tables: Dict[str, dict]
    figures: Dict[str, str] = field(default_factory=dict)

    def run(self, run_id: str) -> Run:
        if run_id not in self.runs:
            raise ConfigError(f"{self.path}: unknown run '{run_id}' (known: {', '.join(sorted(self.runs))})")
        return self.runs[run_id]

    def table(self, table_id: str) -> dict:
        if table_id not in self.tables:
            raise ConfigError(f"{self.path}: unknown table '{table_id}' (known: {', '.join(sorted(self.tables))})")
        return self.tables[table_id]

    def runs_for_tables(self, table_ids: Iterable[str], extra_runs: Iterable[str] = ()) -> List[str]:
        """Run ids needed by the tables (and ``extra_runs``), teachers included, each once, in declaration order."""
        needed = set()
        wanted = [row["run"] for tid in table_ids for row in self.table(tid)["rows"]] + list(extra_runs)
        for run_id in wanted:
            while run_id is not None and run_id not in needed:
                needed.add(self.run(run_id).id)
                run_id = self.runs[run_id].teacher
        return [r for r in self.runs if r in needed]

    def jobs(self, table_ids: Iterable[str], seeds: Iterable[int], extra_runs: Iterable[str] = ()) -> List[Tuple[str, int]]:
        """(run id, seed) pairs to train for the tables (and ``extra_runs``)."""
        seeds = list(seeds)
        return [(r, s) for r in self.runs_for_tables(table_ids, extra_runs) for s in self.runs[r].seeds(seeds)]

    def teacher_of(self, run_id: str) -> Optional[Tuple[str, int]]:
        """(teacher run id, teacher seed) of a run, or None."""
        teacher = self.run(run_id).teacher
        return None if teacher is None else (teacher, self.runs[teacher].seed)


def _check_keys(where: str, mapping: dict, allowed: set) -> None:
    if not isinstance(mapping, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(mapping).__name__}")
    unknown = sorted(set(mapping) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key '{unknown[0]}' (allowed: {', '.join(sorted(allowed))})")


def _parse_run(path: Path, run_id: str, spec: dict) -> Run:
    where = f"{path}: run '{run_id}'"
    _check_keys(where, spec, RUN_KEYS)
    for key in ("detector", "backbone", "dataset", "schedule"):
        if key not in spec:
            raise ConfigError(f"{where}: missing key '{key}'")
    if spec["detector"] not in DETECTORS:
        raise ConfigError(f"{where}: detector '{spec['detector']}' not supported (supported: {', '.join(DETECTORS)})")
    if spec["backbone"] not in BACKBONES:
        raise ConfigError(f"{where}: backbone '{spec['backbone']}' not supported (supported: {', '.join(BACKBONES)})")
    if spec["dataset"] not in DATASETS:
        raise ConfigError(f"{where}: dataset '{spec['dataset']}' not supported (supported: {', '.join(DATASETS)})")
    distill = spec.get("distill") or {}
    _check_keys(f"{where}: distill", distill, DISTILL_KEYS)
    if distill.get("ld", "main") != "main":
        raise ConfigError(f"{where}: distill.ld must be 'main', got '{distill.get('ld')}'")
    if spec.get("teacher") is None and distill:
        raise ConfigError(f"{where}: distill settings given but no teacher")
    seed = spec.get("seed")
    if seed is not None and not isinstance(seed, int):
        raise ConfigError(f"{where}: seed must be an integer, got {seed!r}")
    return Run(id=run_id, detector=spec["detector"], backbone=spec["backbone"], dataset=spec["dataset"],
               schedule=str(spec["schedule"]), seed=seed, teacher=spec.get("teacher"), distill=dict(distill))


def load_matrix(path: str | Path) -> Matrix:
    """Parse and validate the matrix file; every problem is a one-line :class:`ConfigError`."""
    path = Path(path)
    raw = load_yaml_file(path, "experiment matrix file")
    _check_keys(str(path), raw or {}, {"runs", "tables", "figures"})
    runs = {rid: _parse_run(path, rid, spec or {}) for rid, spec in (raw.get("runs") or {}).items()}
    for run in runs.values():
        if run.teacher is None:
            continue
        if run.teacher not in runs:
            raise ConfigError(f"{path}: run '{run.id}': teacher '{run.teacher}' is not a declared run")
        teacher = runs[run.teacher]
        if teacher.teacher is not None:
            raise ConfigError(f"{path}: run '{run.id}': teacher '{teacher.id}' is itself distilled")
        if teacher.seed is None:
            raise ConfigError(f"{path}: run '{teacher.id}' is used as a teacher and needs a fixed 'seed'")
    tables = raw.get("tables") or {}
    for tid, spec in tables.items():
        _check_keys(f"{path}: table '{tid}'", spec, TABLE_KEYS)
        for key in ("metrics", "rows"):
            if not spec.get(key):
                raise ConfigError(f"{path}: table '{tid}': missing key '{key}'")
        for i, row in enumerate(spec["rows"]):
            _check_keys(f"{path}: table '{tid}' row {i + 1}", row, ROW_KEYS)
            if row.get("run") not in runs:
                raise ConfigError(f"{path}: table '{tid}' row '{row.get('row')}': unknown run '{row.get('run')}'")
    figures = raw.get("figures") or {}
    _check_keys(f"{path}: figures", figures, FIGURE_KEYS)
    for key, run_id in figures.items():
        if run_id not in runs:
            raise ConfigError(f"{path}: figures.{key}: unknown run '{run_id}'")
    return Matrix(path=path, runs=runs, tables=dict(tables), figures=dict(figures))
