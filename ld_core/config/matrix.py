"""The experiment matrix (configs/experiments.yaml): runs declared once, tables referencing them by id."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

from .detectors import DETECTORS, DISTILL_KEYS, LD_MODES, backbones
from ..errors import ConfigError
from ..files import load_yaml_file

BACKBONES = backbones()  # configs/models/backbones.yaml
DATASETS = ("coco", "voc")
RUN_KEYS = {"detector", "backbone", "dataset", "schedule", "seed", "teacher", "distill", "distribution", "notes"}
TABLE_KEYS = {"caption", "columns", "metrics", "rows", "seeds", "paper_metrics"}
FIGURE_KEYS = {"baseline", "ld"}
ROW_KEYS = {"row", "run", "cells", "below_rule"}


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
    teacher_seed: Optional[int] = None  # Self-LD: another seed of a run (else the teacher run's fixed seed)
    distill: dict = field(default_factory=dict)
    distribution: bool = True  # box branch predicts a general distribution (always for gfl)

    @property
    def depth(self) -> int:
        return BACKBONES[self.backbone]["depth"]

    @property
    def arch(self) -> dict:
        """ResNet/ResNeXt settings of the backbone (depth, groups, base_width, dcn_stages)."""
        return dict(BACKBONES[self.backbone])

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

    def table_seeds(self, table_id: str, pool: Iterable[int]) -> List[int]:
        """The pipeline seeds a table uses: the first ``seeds:`` of the pool (all of it when not set)."""
        pool = list(pool)
        n = self.table(table_id).get("seeds")
        return pool[:n] if n else pool

    def row_jobs(self, table_id: str, pool: Iterable[int]) -> List[Tuple[str, int]]:
        """(run, seed) pairs whose metrics fill the table's rows."""
        seeds = self.table_seeds(table_id, pool)
        pairs = [(row["run"], s) for row in self.table(table_id)["rows"] for s in self.run(row["run"]).seeds(seeds)]
        return list(dict.fromkeys(pairs))

    def jobs(self, table_ids: Iterable[str], seeds: Iterable[int], extra_runs: Iterable[str] = ()) -> List[Tuple[str, int]]:
        """(run id, seed) pairs to train for the tables (and ``extra_runs`` at the first seed), teachers included,
        each once, in declaration order."""
        seeds = list(seeds)
        wanted = [pair for tid in table_ids for pair in self.row_jobs(tid, seeds)]
        wanted += [(r, s) for r in extra_runs for s in self.run(r).seeds(seeds[:1])]
        needed = set()
        for pair in wanted:
            while pair is not None and pair not in needed:
                needed.add(pair)
                pair = self.teacher_of(pair[0])
        order = {r: i for i, r in enumerate(self.runs)}
        return sorted(needed, key=lambda p: (order[p[0]], p[1]))

    def teacher_of(self, run_id: str) -> Optional[Tuple[str, int]]:
        """(teacher run id, teacher seed) of a run, or None."""
        run = self.run(run_id)
        if run.teacher is None:
            return None
        seed = run.teacher_seed if run.teacher_seed is not None else self.runs[run.teacher].seed
        return run.teacher, seed


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
    if distill.get("ld", "main") not in LD_MODES:
        raise ConfigError(f"{where}: distill.ld must be one of {', '.join(LD_MODES)}, got '{distill.get('ld')}'")
    teacher, teacher_seed = spec.get("teacher"), None
    if isinstance(teacher, dict):  # Self-LD: {run: <id>, seed: <another seed of that run>}
        _check_keys(f"{where}: teacher", teacher, {"run", "seed"})
        teacher, teacher_seed = teacher.get("run"), teacher.get("seed")
        if not isinstance(teacher_seed, int) or isinstance(teacher_seed, bool):
            raise ConfigError(f"{where}: teacher.seed must be an integer, got {teacher_seed!r}")
    if teacher is not None and not isinstance(teacher, str):
        raise ConfigError(f"{where}: teacher must be a run id or {{run: <id>, seed: <n>}}, got {teacher!r}")
    if teacher is None and distill:
        raise ConfigError(f"{where}: distill settings given but no teacher")
    seed = spec.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise ConfigError(f"{where}: seed must be an integer, got {seed!r}")
    distribution = spec.get("distribution", True)
    if not isinstance(distribution, bool):
        raise ConfigError(f"{where}: distribution must be true or false, got {distribution!r}")
    if spec["detector"] == "gfl" and not distribution:
        raise ConfigError(f"{where}: a GFocal head always predicts a distribution (distribution: false is invalid)")
    if teacher is not None and not distribution:
        raise ConfigError(f"{where}: LD needs a distribution box branch (distribution: false with a teacher)")
    return Run(id=run_id, detector=spec["detector"], backbone=spec["backbone"], dataset=spec["dataset"],
               schedule=str(spec["schedule"]), seed=seed, teacher=teacher, teacher_seed=teacher_seed,
               distill=dict(distill), distribution=distribution)


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
        if run.teacher_seed is None and teacher.seed is None:
            raise ConfigError(f"{path}: run '{teacher.id}' is used as a teacher and needs a fixed 'seed' "
                              f"(or name the seed: teacher: {{run: {teacher.id}, seed: <n>}})")
        if run.teacher_seed is not None and teacher.seed is not None and run.teacher_seed != teacher.seed:
            raise ConfigError(f"{path}: run '{run.id}': teacher '{teacher.id}' has the fixed seed {teacher.seed}, "
                              f"not {run.teacher_seed}")
        if not teacher.distribution:
            raise ConfigError(f"{path}: run '{run.id}': teacher '{teacher.id}' has no distribution box branch")
        if teacher.dataset != run.dataset or teacher.detector != run.detector:
            raise ConfigError(f"{path}: run '{run.id}': teacher '{teacher.id}' is a {teacher.detector} on "
                              f"{teacher.dataset}, the student a {run.detector} on {run.dataset}")
    tables = raw.get("tables") or {}
    for tid, spec in tables.items():
        _check_keys(f"{path}: table '{tid}'", spec, TABLE_KEYS)
        for key in ("metrics", "rows"):
            if not spec.get(key):
                raise ConfigError(f"{path}: table '{tid}': missing key '{key}'")
        n = spec.get("seeds")
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
            raise ConfigError(f"{path}: table '{tid}': seeds must be a positive integer (how many pipeline "
                              f"seeds the table uses), got {n!r}")
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
