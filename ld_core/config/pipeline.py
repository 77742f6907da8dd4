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

from ..data.user_dataset import UserDataset
from ..errors import ConfigError, require_dir
from .dataset_file import dataset_cache, load_user_dataset
from .scale import load_scale
from .file_checks import describe, key_path, scale_profile_path, validate_files

if TYPE_CHECKING:  # imported in load_pipeline, once the model files it reads are validated
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


def _deref(root: dict, node):
    """``node`` with its local ``$ref`` (``#/...``) followed."""
    while isinstance(node, dict) and str(node.get("$ref", "")).startswith("#/"):
        target = root
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        node = target
    return node


def _schema_at(root: dict, path: Sequence) -> Tuple[str, object]:
    """What ``root`` says of the value at ``path``: ``('schema', sub-schema)``, ``('free', None)`` where a mapping
    takes any key (e.g. a head override's ``bbox_head``), ``('unknown', allowed keys)`` where the key is not
    allowed."""
    node = _deref(root, root)
    for key in path:
        if isinstance(key, int):
            items = node.get("items")
            if not isinstance(items, dict):
                return "free", None
            node = _deref(root, items)
            continue
        props, extra = node.get("properties", {}), node.get("additionalProperties", True)
        if key in props:
            node = _deref(root, props[key])
        elif isinstance(extra, dict):
            node = _deref(root, extra)
        elif extra is False:
            return "unknown", sorted(props)
        else:
            return "free", None
    return "schema", node


def _accepts(schema: dict, value) -> bool:
    import jsonschema

    try:
        return jsonschema.Draft202012Validator(schema).is_valid(value)
    except Exception:  # a reference it cannot follow alone: no opinion
        return True


NULL_WORDS = ("", "null", "~", "none", "None")


def _typed_as_schema(value, schema: dict):
    """A `--config` leaf (Snakemake hands them over as strings: '2', 'null', 'false') read as the type its
    schema wants: the YAML reading of the string where the schema refuses the string itself."""
    if not isinstance(value, str) or _accepts(schema, value):
        return None if isinstance(value, str) and value in NULL_WORDS and _accepts(schema, None) else value
    types = schema.get("type", [])
    if "boolean" in ([types] if isinstance(types, str) else types) and value.lower() in BOOL_WORDS:
        return BOOL_WORDS[value.lower()]
    try:
        read = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    return value if isinstance(read, str) else read


def _cli_leaves(cli, prefix=()):
    """(path, value) of every leaf given with `--config` (mapping keys and list indices)."""
    if isinstance(cli, Mapping):
        for key, value in cli.items():
            yield from _cli_leaves(value, (*prefix, key))
    elif isinstance(cli, (list, tuple)):
        for i, value in enumerate(cli):
            yield from _cli_leaves(value, (*prefix, i))
    else:
        yield prefix, cli


def _apply_cli_types(data: dict, schema: dict, cli: Mapping) -> None:
    """Each `--config` string leaf in ``data`` as the type the schema wants (:func:`_typed_as_schema`)."""
    for path, value in _cli_leaves(cli):
        if not path or not isinstance(value, str):
            continue
        parent = data
        try:
            for key in path[:-1]:
                parent = parent[key]
            current = parent[path[-1]] if isinstance(parent, (dict, list)) else None
        except (KeyError, IndexError, TypeError):
            continue
        kind, sub = _schema_at(schema, path)
        if isinstance(current, str) and kind == "schema" and isinstance(sub, dict):
            parent[path[-1]] = _typed_as_schema(current, sub)


def _space_hint(key) -> str:
    """`batch_size:2` (no space) is one YAML key with no value: say what was meant."""
    if isinstance(key, str) and ":" in key:
        name, value = key.split(":", 1)
        return f" (did you mean '{name}: {value}' with a space?)"
    return ""


def _null_leaves(value, prefix=()):
    if isinstance(value, dict):
        for key, sub in value.items():
            if sub is None:
                yield (*prefix, key)
            else:
                yield from _null_leaves(sub, (*prefix, key))


def _check_override_nulls(overrides: dict, scale_schema: dict, origin) -> None:
    """A null in ``scale_overrides`` removes the key from the profile (the merge's rule): refused unless the
    scale schema allows null there (or the mapping takes any key, as a head override does). ``origin(path)``:
    who set it."""
    for path in _null_leaves(overrides):
        where = key_path(["scale_overrides", *path])
        kind, sub = _schema_at(scale_schema, path)
        if kind == "unknown":
            raise ConfigError(f"{origin(['scale_overrides', *path])}: config key {where}: '{path[-1]}' is not a key "
                              f"of the scale profile (allowed: {', '.join(sub)}) and has no value"
                              f"{_space_hint(path[-1])}")
        if kind == "schema" and not _accepts(sub, None):
            raise ConfigError(f"{origin(['scale_overrides', *path])}: config key {where}: no value (null), which "
                              f"would remove '{path[-1]}' from the scale profile; a null is allowed only where the "
                              f"profile's schema allows it{_space_hint(path[-1])}")


def _message(err) -> str:
    """The problem of a jsonschema error, in the words of :func:`ld_core.config.file_checks.describe`."""
    if err.validator == "uniqueItems" and isinstance(err.instance, list):
        seen = set()
        dup = next(v for v in err.instance if (json.dumps(v) in seen or seen.add(json.dumps(v))))
        return f"{json.dumps(dup)} is given more than once (each value once: {json.dumps(err.instance)})"
    text = describe(err)[1]
    if err.instance is None:
        text = text.replace("got null None", "got no value (null)")
        text += _space_hint(list(err.absolute_path)[-1]) if err.absolute_path else ""
    return text


def _source_of(path: list, source: str, configfiles: Sequence[str | Path], cli: Mapping) -> str:
    """Where Snakemake took the config value at ``path`` from: `--config`, else the last `--configfile` that
    sets it (read only when an error is reported), else ``source`` (the workflow's configfile)."""
    def sets(data) -> bool:
        for key in path:
            if isinstance(data, Mapping) and key in data:
                data = data[key]
            elif isinstance(data, list) and isinstance(key, int) and 0 <= key < len(data):
                data = data[key]  # an item of a list (`seeds=[-1]`): set where the list was
            else:
                return False
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
    for key in ("scale_overrides", "preconditions"):
        if isinstance(data.get(key), dict):
            data[key] = _typed(data[key])
    for key, sub in schema.get("properties", {}).items():  # `--config figures=false` arrives as a string
        if sub.get("type") == "boolean" and isinstance(data.get(key), str) and data[key].lower() in BOOL_WORDS:
            data[key] = BOOL_WORDS[data[key].lower()]
    _apply_cli_types(data, schema, cli)  # `--config threads={train: 2}` arrives as {'train': '2'}
    _fill_defaults(schema, data)

    def origin(path):
        return _source_of(list(path), source, configfiles, cli)

    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(data), key=lambda e: [str(p) for p in e.path])
    if errors:
        err = errors[0]
        where = key_path(err.absolute_path)
        if err.validator == "additionalProperties":
            allowed = sorted(err.schema.get("properties", {}))
            extra = sorted(set(err.instance) - set(allowed))
            hint = _space_hint(extra[0]) if err.instance.get(extra[0]) in (None, "") else ""
            raise ConfigError(f"{origin([*err.path, extra[0]])}: unknown config key '{extra[0]}' in {where} "
                              f"(allowed: {', '.join(allowed)}){hint}")
        raise ConfigError(f"{origin(err.path)}: config key {where}: {_message(err)}")
    scale_schema = Path(schema_path).with_name("scale.schema.yaml")
    if isinstance(data.get("scale_overrides"), dict) and scale_schema.is_file():
        _check_override_nulls(data["scale_overrides"], yaml.safe_load(scale_schema.read_text()), origin)
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
    user_datasets: Dict[str, UserDataset] = field(default_factory=dict)  # 'coco'/'voc' -> the user's dataset

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

    def teacher_metric_files(self, table_ids: Sequence[str]) -> list:
        """metrics.json of the teachers of the tables' distilled rows (the scorecard's preconditions)."""
        pairs = {self.matrix.teacher_of(run) for table_id in table_ids
                 for run, _ in self.matrix.row_jobs(table_id, self.config["seeds"])}
        return [f"{self.results}/runs/{run}/seed{seed}/metrics.json" for run, seed in sorted(p for p in pairs if p)]

    def table_dataset(self, table_id: str) -> Optional[str]:
        """Name of the user's dataset a table's runs train on (None: the scale profile's data): its table and
        scorecard show no paper values there."""
        names = {getattr(self.user_dataset(row["run"]), "name", None) for row in self.matrix.table(table_id)["rows"]}
        if len(names) > 1:
            shown = ", ".join(sorted(n or "the scale profile's data" for n in names))
            raise ConfigError(f"{self.matrix.path}: table '{table_id}' has runs on several datasets ({shown}): "
                              "one table, one dataset (give both dataset and voc_dataset, or neither)")
        return names.pop()

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
        from .builder import dataset_layout  # reads configs/models/ when imported: after validate_files

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


def load_pipeline(config: dict, basedir: str | Path, source: str = "configs/config.yaml",
                  configfiles: Sequence[str | Path] = (), cli: Mapping = {}) -> Pipeline:
    """Validate the Snakemake config and every file it names (schemas and cross-references:
    :mod:`ld_core.config.file_checks`), then load the matrix and scale profile."""
    basedir = Path(basedir).resolve()
    cfg = validate_config(config, basedir / "workflow" / "schemas" / "config.schema.yaml", source, configfiles, cli)
    for key in ("matrix", "paper_tables", "claims"):  # project files: relative to the repository, not the workdir
        cfg[key] = str(basedir / cfg[key])
    validate_files(cfg, basedir)
    from .matrix import load_matrix  # reads configs/models/ when imported: after validate_files checked it
    from .weights import check_weight_files, resolve_teacher_checkpoints, teacher_runs  # (the same)

    matrix = load_matrix(cfg["matrix"])
    for table in cfg["tables"]:
        matrix.table(table)
    scale_path = scale_profile_path(basedir, cfg["scale"])
    scale = load_scale(scale_path, cfg["scale_overrides"])
    datasets = {matrix.run(r).dataset for r, _ in matrix.jobs(cfg["tables"], cfg["seeds"])}
    user_datasets = {}
    for slot, key in (("coco", "dataset"), ("voc", "voc_dataset")):
        if cfg[key] and slot in datasets:
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
            require_dir(root, key)
    cfg["teacher_checkpoints"] = resolve_teacher_checkpoints(cfg.get("teacher_checkpoints"), matrix, source)
    teachers = teacher_runs(matrix)
    imported = {(run_id, seed): path for run_id, path in cfg["teacher_checkpoints"].items()
                for seed in teachers[run_id]}
    pipe = Pipeline(config=cfg, matrix=matrix, scale=scale, scale_path=scale_path, results=cfg["results"],
                    imported=imported, user_datasets=user_datasets)
    check_weight_files(pipe, source)  # released teachers and ImageNet backbones: keys and shapes, cached
    return pipe
