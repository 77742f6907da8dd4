"""Every config file the Snakefile names, checked when it is parsed: JSON schemas, then cross-references.

:func:`validate_files` is called by :func:`ld_core.config.pipeline.load_pipeline` (the Snakefile, at parse time)
with the validated pipeline config. It checks, each against its schema in ``workflow/schemas/``:

* the model settings files ``configs/models/{gfl,retinanet,fcos,atss}.yaml`` (``detector.schema.yaml``),
  ``distill.yaml`` and ``backbones.yaml``;
* the experiment matrix (``config['matrix']``, ``experiments.schema.yaml``);
* the selected scale profile (``configs/scales/<config['scale']>.yaml``, ``scale.schema.yaml``);
* the claims (``config['claims']``, ``claims.schema.yaml``);
* the paper's numbers (``config['paper_tables']``, ``paper_tables.schema.yaml``: the schema of one CSV row);

then the references between them: table rows -> runs, teachers -> runs, figures -> runs, each row's ``cells``
-> the table's ``columns``, backbones -> ``backbones.yaml``, every run's ``schedule`` -> the scale profile's
``schedules``, claims -> tables / rows / metrics of the matrix and cells of the paper, paper rows -> tables /
rows / metrics of the matrix. The first problem is a one-line :class:`~ld_core.errors.ConfigError`
``<file>: <key>: <problem>``; keys are written ``runs.gfl_r18.schedule``, ``claims[2].better[0]`` (list
indices from 0), and CSV cells ``line <n>, column '<name>'`` (the header is line 1).

Nothing here imports torch, mmdet or pandas, so that a dry run stays fast; this module also does not import
:mod:`ld_core.config.detectors` (which reads ``configs/models/`` when imported) so that a broken model file is
reported here, as one line, before anything else reads it.
"""
from __future__ import annotations

import csv
import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from .scale import read_scale_file
from ..errors import ConfigError
from ..io import load_yaml_file

DETECTOR_FILES = ("gfl", "retinanet", "fcos", "atss")  # == ld_core.config.detectors.DETECTORS (tested)
SCHEMA_NAMES = ("config", "experiments", "scale", "claims", "paper_tables", "detector", "distill", "backbones",
                "dataset")
MAX_SHOWN = 60  # characters of a bad value shown in a message

_TYPE_WORDS = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
               "number": "a number", "boolean": "true or false", "null": "null"}
_TYPE_NAMES = {dict: "a mapping", list: "a list", str: "a string", int: "an integer", float: "a number",
               bool: "a boolean", type(None): "null"}


# ----------------------------------------------------------------------------------------------- schemas


def _load_yaml(path: Path, what: str):
    """Parse a YAML file; problems are one-line errors naming the file (:func:`ld_core.io.load_yaml_file`)."""
    return load_yaml_file(path, what)


class Schemas:
    """The JSON schemas of ``workflow/schemas/`` (``<name>.schema.yaml``), cross-file ``$ref`` resolved."""

    def __init__(self, schema_dir: str | Path):
        from jsonschema import Draft202012Validator
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT202012

        self.dir = Path(schema_dir)
        self.schemas = {name: _load_yaml(self.dir / f"{name}.schema.yaml", "schema") for name in SCHEMA_NAMES}
        registry = Registry().with_resources(
            (f"{name}.schema.yaml", Resource.from_contents(schema, default_specification=DRAFT202012))
            for name, schema in self.schemas.items())
        self.validators = {name: Draft202012Validator(schema, registry=registry)
                           for name, schema in self.schemas.items()}

    def first_error(self, name: str, data):
        """The most relevant schema error of ``data`` (None if it is valid)."""
        from jsonschema.exceptions import best_match

        return best_match(self.validators[name].iter_errors(data))

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


# ----------------------------------------------------------------------------------------------- the paper CSV


def _coerce(text: str, types) -> object:
    """A CSV cell as the schema's integer/number type when it parses as one (else the string: a type error)."""
    types = _types(types or [])
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


def load_paper_csv(path: Path, schema_set: Schemas) -> List[Tuple[int, dict]]:
    """(line number, row) of every data line of the paper CSV, each row checked against the row schema.

    Read as :func:`ld_core.report.tables.load_paper_values` reads it (leading spaces skipped, blank lines
    ignored), without pandas.
    """
    if not path.is_file():
        raise ConfigError(f"{path}: paper values file does not exist")
    try:
        lines = list(csv.reader(path.read_text(encoding="utf-8").splitlines(), skipinitialspace=True))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"{path}: cannot read the paper values ({' '.join(str(exc).split())})") from None
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
        err = schema_set.first_error("paper_tables", row)
        if err is not None:
            parts, (_, text) = list(err.absolute_path), describe(err)
            where = f"line {line}, column '{parts[0]}'" if parts else f"line {line}"
            raise ConfigError(f"{path}: {where}: {text}")
        rows.append((line, row))
    return rows


# ----------------------------------------------------------------------------------------------- cross-references


def _names(items: Iterable) -> str:
    return ", ".join(str(i) for i in items) or "none"


def _as_list(value) -> List[Tuple[Optional[int], str]]:
    """(index, item) of a list, or (None, value) of one string (claims accept a single row/metric)."""
    return [(None, value)] if isinstance(value, str) else list(enumerate(value))


def _check_matrix(path: Path, matrix: dict, backbones: dict, backbones_path: Path, scale: dict,
                  scale_path: Path, distill: dict, distill_path: Path) -> None:
    runs, schedules, presets = matrix["runs"], scale["schedules"], distill.get("presets") or {}
    for rid, run in runs.items():
        where = f"runs.{rid}"
        preset = (run.get("distill") or {}).get("preset")
        if preset is not None and preset not in presets:
            raise ConfigError(f"{path}: {where}.distill.preset: preset '{preset}' is not defined in "
                              f"{distill_path} (presets: {_names(presets)})")
        if run["backbone"] not in backbones:
            raise ConfigError(f"{path}: {where}.backbone: backbone '{run['backbone']}' not supported (supported, "
                              f"{backbones_path}: {_names(backbones)})")
        if run["schedule"] not in schedules:
            raise ConfigError(f"{path}: {where}.schedule: schedule '{run['schedule']}' is not defined in the scale "
                              f"profile {scale_path} (schedules: {_names(schedules)})")
        teacher = run.get("teacher")
        if teacher is not None:
            tid, key = (teacher, "teacher") if isinstance(teacher, str) else (teacher["run"], "teacher.run")
            if tid not in runs:
                raise ConfigError(f"{path}: {where}.{key}: teacher '{tid}' is not a declared run "
                                  f"(runs: {_names(runs)})")
        elif run.get("distill"):
            raise ConfigError(f"{path}: {where}.distill: distill settings given but no teacher")
    for tid, table in matrix["tables"].items():
        columns, metrics = table.get("columns") or [], table["metrics"]
        for metric in table.get("paper_metrics") or {}:
            if metric not in metrics:
                raise ConfigError(f"{path}: tables.{tid}.paper_metrics.{metric}: '{metric}' is not a metric of "
                                  f"{tid} (metrics: {_names(metrics)})")
        seen = set()
        for i, row in enumerate(table["rows"]):
            where = f"tables.{tid}.rows[{i}]"
            if row["row"] in seen:
                raise ConfigError(f"{path}: {where}.row: duplicate row id '{row['row']}' in {tid}")
            seen.add(row["row"])
            if row["run"] not in runs:
                raise ConfigError(f"{path}: {where}.run: unknown run '{row['run']}' (known: {_names(runs)})")
            cells = row.get("cells") or []
            if len(cells) != len(columns):
                raise ConfigError(f"{path}: {where}.cells: {len(cells)} cells for the {len(columns)} columns of "
                                  f"{tid} ({_names(columns)})")
    for role, rid in (matrix.get("figures") or {}).items():
        if rid not in runs:
            raise ConfigError(f"{path}: figures.{role}: unknown run '{rid}' (known: {_names(runs)})")


def _table_rows(table: dict) -> List[str]:
    return [row["row"] for row in table["rows"]]


def _check_paper(path: Path, rows: Sequence[Tuple[int, dict]], matrix: dict, matrix_path: Path) -> Dict:
    """Paper rows -> tables/rows/metrics of the matrix; returns {(tableN, row, metric): line}."""
    tables, cells = matrix["tables"], {}
    for line, rec in rows:
        tid, row, metric = f"table{rec['table']}", rec["row"].strip(), rec["metric"].strip()
        if tid not in tables:
            raise ConfigError(f"{path}: line {line}, column 'table': {rec['table']} ({tid}) is not a table of the "
                              f"matrix {matrix_path} (tables: {_names(tables)})")
        table = tables[tid]
        if row not in _table_rows(table):
            raise ConfigError(f"{path}: line {line}, column 'row': row '{row}' is not a row of {tid} "
                              f"(rows: {_names(_table_rows(table))})")
        known = list(dict.fromkeys([*table["metrics"], *(table.get("paper_metrics") or {}).values()]))
        if metric not in known:
            raise ConfigError(f"{path}: line {line}, column 'metric': '{metric}' is not a metric of {tid} "
                              f"(metrics: {_names(known)})")
        if (tid, row, metric) in cells:
            raise ConfigError(f"{path}: line {line}: duplicate value for {tid}, row '{row}', metric '{metric}' "
                              f"(first on line {cells[(tid, row, metric)]})")
        cells[(tid, row, metric)] = line
    return cells


def _check_claims(path: Path, claims: dict, matrix: dict, matrix_path: Path, paper_cells: Dict,
                  paper_path: Path) -> None:
    """Claims -> tables/rows/metrics of the matrix, and cells of the paper (the scorecard's own checks)."""
    tables, ids = matrix["tables"], {}
    for i, claim in enumerate(claims["claims"]):
        where = f"claims[{i}]"
        cid = claim["id"].strip()
        if cid in ids:
            raise ConfigError(f"{path}: {where}.id: duplicate id '{cid}' (also claims[{ids[cid]}])")
        ids[cid] = i
        tid = claim["table"]
        if tid not in tables:
            raise ConfigError(f"{path}: {where}.table: '{tid}' is not a table of the matrix {matrix_path} "
                              f"(tables: {_names(tables)})")
        rows, metrics = _table_rows(tables[tid]), tables[tid]["metrics"]
        better = [(f"{where}.better" + ("" if j is None else f"[{j}]"), r.strip())
                  for j, r in _as_list(claim["better"])]
        than = claim["than"].strip()
        for key, row in [*better, (f"{where}.than", than)]:
            if row not in rows:
                raise ConfigError(f"{path}: {key}: row '{row}' is not a row of {tid} (rows: {_names(rows)})")
        if than in [row for _, row in better]:
            raise ConfigError(f"{path}: {where}.than: row '{than}' is both in 'better' and 'than'")
        for j, metric in _as_list(claim["metrics"]):
            key, metric = f"{where}.metrics" + ("" if j is None else f"[{j}]"), metric.strip()
            if metric not in metrics:
                raise ConfigError(f"{path}: {key}: '{metric}' is not a metric of {tid} (metrics: {_names(metrics)})")
            for row in [] if claim.get("ours_only") else [row for _, row in better] + [than]:
                if (tid, row, metric) not in paper_cells:
                    raise ConfigError(f"{path}: {key}: the paper ({paper_path}) has no {metric} for row '{row}' "
                                      f"of {tid}")


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
        loaded[name] = s.check(schema, _load_yaml(path, "model settings file"), path)

    matrix_path = Path(cfg["matrix"])
    matrix = s.check("experiments", _load_yaml(matrix_path, "experiment matrix file"), matrix_path)
    scale_path = scale_profile_path(basedir, cfg["scale"])
    if not scale_path.is_file():
        known = sorted(p.stem for p in scale_path.parent.glob("*.yaml"))
        raise ConfigError(f"{scale_path}: scale profile '{cfg['scale']}' does not exist (profiles: {_names(known)})")
    if cfg.get("scale_overrides"):
        scale = s.check("scale", read_scale_file(scale_path, cfg["scale_overrides"]),
                        f"{scale_path} with scale_overrides")
    else:
        scale = s.check("scale", read_scale_file(scale_path), scale_path)
    claims_path = Path(cfg["claims"])
    claims = s.check("claims", _load_yaml(claims_path, "claims file"), claims_path)
    paper_path = Path(cfg["paper_tables"])
    paper_rows = load_paper_csv(paper_path, s)

    preset = loaded["distill"]["defaults"]["preset"]
    if preset not in (loaded["distill"].get("presets") or {}):
        raise ConfigError(f"{models / 'distill.yaml'}: defaults.preset: preset '{preset}' is not defined in "
                          f"`presets` (presets: {_names(loaded['distill'].get('presets') or {})})")
    _check_matrix(matrix_path, matrix, loaded["backbones"], models / "backbones.yaml", scale, scale_path,
                  loaded["distill"], models / "distill.yaml")
    paper_cells = _check_paper(paper_path, paper_rows, matrix, matrix_path)
    _check_claims(claims_path, claims, matrix, matrix_path, paper_cells, paper_path)
