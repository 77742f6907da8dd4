"""Every config file the Snakefile names, checked when it is parsed: JSON schemas, then cross-references.

:func:`validate_files` is called by :func:`ld_core.config.pipeline.load_pipeline` (the Snakefile, at parse time)
with the validated pipeline config. It checks, each against its schema in ``workflow/schemas/``:

* the model settings files ``configs/models/{gfl,retinanet,fcos,atss}.yaml`` (``detector.schema.yaml``),
  ``distill.yaml`` and ``backbones.yaml``;
* the experiment matrix (``config['matrix']``, ``experiments.schema.yaml``);
* the selected scale profile (``configs/scales/<config['scale']>.yaml``, ``scale.schema.yaml``);
* the paper's numbers (``config['paper_tables']``, ``paper_tables.schema.yaml``: the schema of one CSV row) and
  the claims (``config['claims']``, ``claims.schema.yaml``), through the loaders the reports use too
  (:func:`ld_core.config.paper.load_paper`, :func:`ld_core.config.claims.load_claims`);

then the references between them: table rows -> runs, teachers -> runs, figures -> runs, each row's ``cells``
-> the table's ``columns``, backbones -> ``backbones.yaml``, every run's ``schedule`` -> the scale profile's
``schedules``, paper rows -> tables / rows / metrics of the matrix, claims -> tables / rows / metrics of the
matrix and cells of the paper. The first problem is a one-line :class:`~ld_core.errors.ConfigError`
``<file>: <key>: <problem>``; keys are written ``runs.gfl_r18.schedule``, ``claims[2].better[0]`` (list
indices from 0), and CSV cells ``line <n>, column '<name>'`` (the header is line 1).

Nothing here imports torch, mmdet or pandas, so that a dry run stays fast; this module also does not import
:mod:`ld_core.config.detectors` (which reads ``configs/models/`` when imported) so that a broken model file is
reported here, as one line, before anything else reads it.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Iterable, List, Optional, Tuple

from .claims import load_claims
from .paper import load_paper
from .scale import read_scale_file
from ..errors import ConfigError, name_list, require_file
from ..files import load_yaml_file

DETECTOR_FILES = ("gfl", "retinanet", "fcos", "atss")  # == ld_core.config.detectors.DETECTORS (tested)
SCHEMA_NAMES = ("config", "experiments", "scale", "claims", "paper_tables", "detector", "distill", "backbones",
                "dataset")
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "workflow" / "schemas"  # the project's (the report commands')
MAX_SHOWN = 60  # characters of a bad value shown in a message

_TYPE_WORDS = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
               "number": "a number", "boolean": "true or false", "null": "null"}
_TYPE_NAMES = {dict: "a mapping", list: "a list", str: "a string", int: "an integer", float: "a number",
               bool: "a boolean", type(None): "null"}


# ----------------------------------------------------------------------------------------------- schemas


class Schemas:
    """The JSON schemas of ``workflow/schemas/`` (``<name>.schema.yaml``), cross-file ``$ref`` resolved."""

    def __init__(self, schema_dir: str | Path):
        from jsonschema import Draft202012Validator
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012

        self.dir = Path(schema_dir)
        self.schemas = {name: load_yaml_file(self.dir / f"{name}.schema.yaml", "schema") for name in SCHEMA_NAMES}
        registry = Registry().with_resources(
            (f"{name}.schema.yaml", Resource.from_contents(schema, default_specification=DRAFT202012))
            for name, schema in self.schemas.items())
        self.validators = {name: Draft202012Validator(schema, registry=registry)
                           for name, schema in self.schemas.items()}

    def first_error(self, name: str, data):
        """The most relevant schema error of ``data`` (None if it is valid)."""
        from jsonschema.exceptions import best_match

        return best_match(self.validators[name].iter_errors(data))

    def first_problem(self, name: str, data) -> Optional[Tuple[list, str]]:
        """(key parts, problem in words: :func:`describe`) of the first schema error of ``data``; None if valid."""
        err = self.first_error(name, data)
        return None if err is None else (list(err.absolute_path), describe(err)[1])

    def check(self, name: str, data, path: Path):
        """Raise the first schema error of ``data`` as ``<path>: <key>: <problem>``; return ``data``."""
        err = self.first_error(name, data)
        if err is not None:
            where, text = describe(err)
            raise ConfigError(f"{path}: {where}: {text}")
        return data


@lru_cache(maxsize=8)
def schemas(schema_dir: str) -> Schemas:
    return Schemas(schema_dir)


def project_schemas() -> Schemas:
    """The project's own schemas (``workflow/schemas/``): what the report commands check their inputs with."""
    return schemas(str(SCHEMA_DIR))


def key_path(parts: Iterable) -> str:
    """``runs.gfl_r18.teacher``, ``claims[2].better[0]``; ``(top level)`` for the document itself."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN - 3] + "..."


def _type_of(value) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _types(value) -> List[str]:
    return [value] if isinstance(value, str) else list(value)


def describe(err) -> Tuple[str, str]:
    """(key path, problem) of a jsonschema error, in the words of the matrix/scale loaders."""
    where = key_path(err.absolute_path)
    v, value, instance = err.validator, err.validator_value, err.instance
    if v == "additionalProperties" and isinstance(instance, dict):
        allowed = sorted(err.schema.get("properties", {}))
        extra = [k for k in instance if k not in allowed]
        return where, f"unknown key '{extra[0]}' (allowed: {', '.join(allowed)})"
    if v == "required" and isinstance(instance, dict):
        missing = [k for k in value if k not in instance]
        return where, f"missing key '{missing[0]}'"
    if v == "dependentRequired" and isinstance(instance, dict):
        for key, needed in value.items():
            missing = [k for k in needed if key in instance and k not in instance]
            if missing:
                return where, f"missing key '{missing[0]}' (needed with '{key}')"
    if v == "type":
        return where, (f"must be {' or '.join(_TYPE_WORDS.get(t, t) for t in _types(value))}, "
                       f"got {_type_of(instance)} {_show(instance)}")
    if v in ("oneOf", "anyOf") and err.context and all(e.validator == "type" and not e.relative_path
                                                         for e in err.context):
        types = dict.fromkeys(t for e in err.context for t in _types(e.validator_value))
        return where, (f"must be {' or '.join(_TYPE_WORDS.get(t, t) for t in types)}, "
                       f"got {_type_of(instance)} {_show(instance)}")
    if v in ("enum", "const"):
        options = [value] if v == "const" else value
        shown = ", ".join("null" if o is None else str(o) for o in options)
        return where, f"must be one of {shown}, got {_show(instance)}"
    if "propertyNames" in err.relative_schema_path or "propertyNames" in err.schema_path:
        return where, f"key {_show(instance)} does not match {value}"
    if v == "pattern" and value == "\\S":
        return where, f"must not be empty, got {_show(instance)}"
    if v in ("minItems", "minProperties", "minLength") and value == 1:
        return where, "must not be empty"
    return where, " ".join(err.message.split())[:300]


# ----------------------------------------------------------------------------------------------- cross-references


def _check_matrix(path: Path, matrix: dict, backbones: dict, backbones_path: Path, scale: dict,
                  scale_path: Path, distill: dict, distill_path: Path) -> None:
    runs, schedules, presets = matrix["runs"], scale["schedules"], distill.get("presets") or {}
    for rid, run in runs.items():
        where = f"runs.{rid}"
        preset = (run.get("distill") or {}).get("preset")
        if preset is not None and preset not in presets:
            raise ConfigError(f"{path}: {where}.distill.preset: preset '{preset}' is not defined in "
                              f"{distill_path} (presets: {name_list(presets)})")
        if run["backbone"] not in backbones:
            raise ConfigError(f"{path}: {where}.backbone: backbone '{run['backbone']}' not supported (supported, "
                              f"{backbones_path}: {name_list(backbones)})")
        if run["schedule"] not in schedules:
            raise ConfigError(f"{path}: {where}.schedule: schedule '{run['schedule']}' is not defined in the scale "
                              f"profile {scale_path} (schedules: {name_list(schedules)})")
        teacher = run.get("teacher")
        if teacher is not None:
            tid, key = (teacher, "teacher") if isinstance(teacher, str) else (teacher["run"], "teacher.run")
            if tid not in runs:
                raise ConfigError(f"{path}: {where}.{key}: teacher '{tid}' is not a declared run "
                                  f"(runs: {name_list(runs)})")
        elif run.get("distill"):
            raise ConfigError(f"{path}: {where}.distill: distill settings given but no teacher")
    for tid, table in matrix["tables"].items():
        columns, metrics = table.get("columns") or [], table["metrics"]
        for metric in table.get("paper_metrics") or {}:
            if metric not in metrics:
                raise ConfigError(f"{path}: tables.{tid}.paper_metrics.{metric}: '{metric}' is not a metric of "
                                  f"{tid} (metrics: {name_list(metrics)})")
        seen = set()
        for i, row in enumerate(table["rows"]):
            where = f"tables.{tid}.rows[{i}]"
            if row["row"] in seen:
                raise ConfigError(f"{path}: {where}.row: duplicate row id '{row['row']}' in {tid}")
            seen.add(row["row"])
            if row["run"] not in runs:
                raise ConfigError(f"{path}: {where}.run: unknown run '{row['run']}' (known: {name_list(runs)})")
            cells = row.get("cells") or []
            if len(cells) != len(columns):
                raise ConfigError(f"{path}: {where}.cells: {len(cells)} cells for the {len(columns)} columns of "
                                  f"{tid} ({name_list(columns)})")
    for role, rid in (matrix.get("figures") or {}).items():
        if rid not in runs:
            raise ConfigError(f"{path}: figures.{role}: unknown run '{rid}' (known: {name_list(runs)})")


# ----------------------------------------------------------------------------------------------- entry point


def scale_profile_path(basedir: str | Path, scale: str) -> Path:
    """``configs/scales/<scale>.yaml``, or the user's own profile file when ``scale`` ends in .yaml/.yml."""
    if scale.endswith((".yaml", ".yml")):
        return Path(scale).expanduser().resolve()
    return Path(basedir) / "configs" / "scales" / f"{scale}.yaml"


def validate_files(cfg: dict, basedir: str | Path) -> None:
    """Check every file the pipeline config ``cfg`` names (absolute ``matrix``, ``claims``, ``paper_tables``;
    ``scale``), the model settings files and their cross-references; the first problem is a ConfigError."""
    basedir = Path(basedir)
    s = schemas(str(basedir / "workflow" / "schemas"))
    models = basedir / "configs" / "models"
    loaded = {}
    for name, schema in [(d, "detector") for d in DETECTOR_FILES] + [("distill", "distill"), ("backbones", "backbones")]:
        path = models / f"{name}.yaml"
        loaded[name] = s.check(schema, load_yaml_file(path, "model settings file"), path)

    matrix_path = Path(cfg["matrix"])
    matrix = s.check("experiments", load_yaml_file(matrix_path, "experiment matrix file"), matrix_path)
    scale_path = scale_profile_path(basedir, cfg["scale"])
    require_file(scale_path, f"scale profile '{cfg['scale']}'",
                 hint=f"profiles: {name_list(sorted(p.stem for p in scale_path.parent.glob('*.yaml')))}")
    if cfg.get("scale_overrides"):
        scale = s.check("scale", read_scale_file(scale_path, cfg["scale_overrides"]),
                        f"{scale_path} with scale_overrides")
    else:
        scale = s.check("scale", read_scale_file(scale_path), scale_path)

    preset = loaded["distill"]["defaults"]["preset"]
    if preset not in (loaded["distill"].get("presets") or {}):
        raise ConfigError(f"{models / 'distill.yaml'}: defaults.preset: preset '{preset}' is not defined in "
                          f"`presets` (presets: {name_list(loaded['distill'].get('presets') or {})})")
    _check_matrix(matrix_path, matrix, loaded["backbones"], models / "backbones.yaml", scale, scale_path,
                  loaded["distill"], models / "distill.yaml")
    paper = load_paper(cfg["paper_tables"], matrix["tables"], matrix_path, s)
    load_claims(cfg["claims"], matrix["tables"], matrix_path, paper, s)
