"""The pipeline configuration seen by the Snakefile: validated, defaults filled, matrix and scale loaded."""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Mapping, Optional, Sequence, Tuple

import yaml

from ..errors import ConfigError

if TYPE_CHECKING:  # imported in load_pipeline, once the model files they read are validated
    from ..data.user_dataset import UserDataset
    from .matrix import Matrix


COMPLEXITY_METRICS = {"params_M", "GFLOPs", "FPS"}
BOOL_WORDS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def _typed(value):
    """Leaves of a mapping given with `--config key={...}`: Snakemake hands them over as strings ('2', 'null');
    each is read as a YAML scalar, as it would be in a file."""
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_typed(v) for v in value]
    if isinstance(value, str):
        try:
            return yaml.safe_load(value)
        except yaml.YAMLError:
            return value
    return value


def _fill_defaults(schema: dict, data: dict) -> None:
    for key, sub in schema.get("properties", {}).items():
        if key not in data and "default" in sub:
            data[key] = json.loads(json.dumps(sub["default"]))
        if isinstance(data.get(key), dict) and sub.get("type") == "object":
            _fill_defaults(sub, data[key])


def _source_of(path: list, source: str, configfiles: Sequence[str | Path], cli: Mapping) -> str:
    """Where Snakemake took the config value at ``path`` from: `--config`, else the last `--configfile` that
    sets it (read only when an error is reported), else ``source`` (the workflow's configfile)."""
    def sets(data) -> bool:
        for key in path:
            if not isinstance(data, Mapping) or key not in data:
                return False
            data = data[key]
        return True

    if path and sets(cli):
        return "--config"
    for name in reversed(list(configfiles)):
        if path and sets(yaml.safe_load(Path(name).read_text()) or {}):
            rel = os.path.relpath(name)
            return str(name) if rel.startswith("..") else rel  # as short as it stays unambiguous
    return source


def validate_config(config: dict, schema_path: str | Path, source: str = "config",
                    configfiles: Sequence[str | Path] = (), cli: Mapping = {}) -> dict:
    """Check ``config`` against the JSON schema (unknown keys are errors) and fill in defaults. An error names
    the file (or `--config`) that set the offending key: ``configfiles`` and ``cli`` as given to Snakemake."""
    import jsonschema

    schema = yaml.safe_load(Path(schema_path).read_text())
    data = json.loads(json.dumps(config))
    if isinstance(data.get("seeds"), list):  # `--config seeds=[0,1,2]` arrives as strings
        data["seeds"] = [int(s) if isinstance(s, str) and s.strip().isdigit() else s for s in data["seeds"]]
    if isinstance(data.get("scale_overrides"), dict):
        data["scale_overrides"] = _typed(data["scale_overrides"])
    for key, sub in schema.get("properties", {}).items():  # `--config figures=false` arrives as a string
        if sub.get("type") == "boolean" and isinstance(data.get(key), str) and data[key].lower() in BOOL_WORDS:
            data[key] = BOOL_WORDS[data[key].lower()]
    _fill_defaults(schema, data)
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        err = errors[0]
        where = ".".join(str(p) for p in err.path) or "(top level)"
        if err.validator == "additionalProperties":
            allowed = sorted(err.schema.get("properties", {}))
            extra = sorted(set(err.instance) - set(allowed))
            origin = _source_of([*err.path, extra[0]], source, configfiles, cli)
            raise ConfigError(f"{origin}: unknown config key '{extra[0]}' in {where} (allowed: {', '.join(allowed)})")
        raise ConfigError(f"{_source_of(list(err.path), source, configfiles, cli)}: config key {where}: {err.message}")
    return data


@dataclass
class Pipeline:
    """Everything the rules need, derived once from the validated config."""

    config: dict
    matrix: Matrix
    scale: dict
    scale_path: Path
    results: str
    imported: Dict[Tuple[str, int], str] = field(default_factory=dict)  # (teacher run, seed) -> released file
    user_datasets: Dict[str, "UserDataset"] = field(default_factory=dict)  # 'coco'/'voc' -> the user's dataset

    @cached_property
    def first_jobs(self) -> set:
        """(run, seed) pairs of the first table of ``tables`` (Table 1 by default), its teachers included: the
        rules give them a higher Snakemake priority, so that this table and its scorecard part come first."""
        return set(self.matrix.jobs(self.config["tables"][:1], self.config["seeds"]))

    @cached_property
    def teacher_jobs(self) -> set:
        """(run, seed) pairs that a selected run distils from: the rules start them before the students of the
        same priority band, since those wait for them (the DAG's critical path)."""
        return {teacher for run, _ in self.jobs() if (teacher := self.matrix.teacher_of(run)) is not None}

    @cached_property
    def datasets(self) -> set:
        """Matrix dataset names ('coco', 'voc') of the selected runs."""
        return {self.matrix.run(run).dataset for run, _ in self.jobs()}

    @property
    def synthetic(self) -> bool:
        """Whether some selected run trains on the generated synthetic data."""
        return (self.scale["data"]["kind"] == "synthetic"
                and any(name not in self.user_datasets for name in self.datasets))

    def user_dataset(self, run_id: str):
        """The user's dataset a run trains on instead of its matrix dataset (None: the profile's)."""
        return self.user_datasets.get(self.matrix.run(run_id).dataset)

    def classes(self, run_id: str):
        """Class names of a run's dataset (None: mmdet's COCO / VOC classes)."""
        from .builder import dataset_classes

        return dataset_classes(self.scale, self.user_dataset(run_id))

    def jobs(self):
        """(run, seed) pairs to train and evaluate: the tables' runs and the figures' runs."""
        extra = self.matrix.figures.values() if self.figure_runs() else ()
        return self.matrix.jobs(self.config["tables"], self.config["seeds"], extra)

    def table_metric_files(self, table_id: str) -> list:
        """metrics.json of every (run, seed) of the table's rows (+ complexity.json where it shows params/FPS)."""
        names = ["metrics.json"]
        if set(self.matrix.table(table_id)["metrics"]) & COMPLEXITY_METRICS:
            names.append("complexity.json")
        return [f"{self.results}/runs/{run}/seed{seed}/{name}"
                for run, seed in self.matrix.row_jobs(table_id, self.config["seeds"]) for name in names]

    def figure_runs(self) -> dict:
        """{'baseline': run folder, 'ld': run folder} of the figures (first pipeline seed), or {} if none."""
        if not self.config["figures"] or not self.matrix.figures:
            return {}
        out = {}
        for role, run_id in self.matrix.figures.items():
            seed = self.matrix.run(run_id).seeds(self.config["seeds"])[0]
            out[role] = f"{self.results}/runs/{run_id}/seed{seed}"
        return out

    def val_annotations(self) -> tuple:
        """(annotation file, image folder) of the validation split."""
        from .builder import dataset_layout

        layout = dataset_layout(self.scale, self.results, self.config["data_root"], self.user_datasets.get("coco"))
        return str(Path(layout["root"]) / layout["val_ann"]), str(Path(layout["root"]) / layout["val_img"])

    def teacher_checkpoint(self, run_id: str) -> list:
        teacher = self.matrix.teacher_of(run_id)
        return [] if teacher is None else [f"{self.results}/runs/{teacher[0]}/seed{teacher[1]}/checkpoint.pth"]

    def import_source(self, run_id: str, seed: int) -> str:
        """The user's checkpoint file an imported teacher (run, seed) is converted from."""
        return self.imported[(run_id, int(seed))]

    def checkpoint_constraint(self, imported: bool) -> str:
        """Regular expression of the ``run`` wildcard of the rule making ``runs/<run>/seed<k>/checkpoint.pth``:
        ``imported=True`` matches exactly the imported (teacher, seed) pairs (rule import_teacher), ``False``
        every other run and seed (rule train). A lookahead over ``<run>/seed<k>/`` makes the two rules disjoint
        per pair: a run can be an imported teacher at its teacher seed and trained at the others (Self-LD)."""
        runs = "|".join(re.escape(r) for r in self.matrix.runs)
        pairs = "|".join(f"{re.escape(r)}/seed{s}" for r, s in sorted(self.imported))
        if imported:
            return f"(?=(?:{pairs})/)(?:{runs})" if pairs else "(?!)"
        return f"(?!(?:{pairs})/)(?:{runs})" if pairs else f"(?:{runs})"

    def resolve_params(self, run_id: str, seed: int) -> str:
        """What the resolved config of (run, seed) depends on, as a string (Snakemake's params trigger)."""
        run = self.matrix.run(run_id)
        keys = {k: self.config[k] for k in ("data_root", "voc_root", "pretrained_dir", "results")}
        user = self.user_dataset(run_id)
        if user is not None:
            keys["dataset"] = user.as_dict()
        if self.config["rehearsal"]:
            keys["rehearsal"] = self.config["rehearsal"]
        return json.dumps(dict(run=run.__dict__, seed=seed, scale=self.scale, **keys), sort_keys=True, default=str)


def dataset_cache(results: str | Path) -> Path:
    """Where the class lists read from the user's annotation files are remembered."""
    return Path(results) / "checks" / "datasets"


def load_pipeline(config: dict, basedir: str | Path, source: str = "configs/config.yaml",
                  configfiles: Sequence[str | Path] = (), cli: Mapping = {}) -> Pipeline:
    """Validate the Snakemake config and every file it names (schemas and cross-references:
    :mod:`ld_core.config.validate`), then load the matrix and scale profile."""
    basedir = Path(basedir).resolve()
    cfg = validate_config(config, basedir / "workflow" / "schemas" / "config.schema.yaml", source, configfiles, cli)
    for key in ("matrix", "paper_tables", "claims"):  # project files: relative to the repository, not the workdir
        cfg[key] = str(basedir / cfg[key])
    from .validate import scale_profile_path, validate_files

    validate_files(cfg, basedir)
    from .matrix import load_matrix  # reads configs/models/ when imported: after validate_files checked it
    from .scale import load_scale

    matrix = load_matrix(cfg["matrix"])
    for table in cfg["tables"]:
        matrix.table(table)
    scale_path = scale_profile_path(basedir, cfg["scale"])
    scale = load_scale(scale_path, cfg["scale_overrides"])
    datasets = {matrix.run(r).dataset for r, _ in matrix.jobs(cfg["tables"], cfg["seeds"])}
    user_datasets = {}
    for slot, key in (("coco", "dataset"), ("voc", "voc_dataset")):
        if cfg[key] and slot in datasets:
            from ..data.user_dataset import load_user_dataset

            user_datasets[slot] = load_user_dataset(cfg[key], slot, schema_dir=basedir / "workflow" / "schemas",
                                                    cache_dir=dataset_cache(cfg["results"]))
    if scale["data"]["kind"] != "synthetic":  # the COCO 2017 / VOC 07+12 folders the selected runs need
        for dataset, key, what in (("coco", "data_root", "the COCO folder"), ("voc", "voc_root", "the VOCdevkit folder")):
            if dataset not in datasets or dataset in user_datasets:
                continue
            root: Optional[str] = cfg[key]
            if not root:
                raise ConfigError(f"{source}: scale '{cfg['scale']}' needs {key} ({what}) for the {dataset} runs "
                                  f"of tables {', '.join(cfg['tables'])}, e.g. --config {key}=/data/{dataset}")
            if not Path(root).is_dir():
                raise ConfigError(f"{root}: {key} does not exist")
    from .weights import check_weight_files, resolve_teacher_checkpoints, teacher_runs

    cfg["teacher_checkpoints"] = resolve_teacher_checkpoints(cfg.get("teacher_checkpoints"), matrix, source)
    teachers = teacher_runs(matrix)
    imported = {(run_id, seed): path for run_id, path in cfg["teacher_checkpoints"].items()
                for seed in teachers[run_id]}
    pipe = Pipeline(config=cfg, matrix=matrix, scale=scale, scale_path=scale_path, results=cfg["results"],
                    imported=imported, user_datasets=user_datasets)
    check_weight_files(pipe, source)  # released teachers and ImageNet backbones: keys and shapes, cached
    return pipe
