"""The runs' metrics files (``metrics.json``, ``complexity.json``: ``{"run", "seed", "metrics": {name: value}}``),
read and checked into one long frame: the inputs of the tables and of the scorecard's preconditions."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Iterable, List, Tuple

import pandas as pd

from ..errors import DataError, one_line, require_file

METRICS_REQUIRED = ("run", "seed", "metrics")


def _load_one_metrics(path: Path) -> Tuple[str, int, List[dict]]:
    require_file(path, "metrics file", DataError)
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read metrics file ({one_line(exc)})") from None
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected a JSON object, got {type(raw).__name__}")
    for key in METRICS_REQUIRED:
        if key not in raw:
            raise DataError(f"{path}: missing key '{key}' (required: {', '.join(METRICS_REQUIRED)})")
    run, seed, metrics = raw["run"], raw["seed"], raw["metrics"]
    if not isinstance(run, str) or not run:
        raise DataError(f"{path}: 'run' must be a non-empty string, got {run!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise DataError(f"{path}: 'seed' must be an integer, got {seed!r}")
    if not isinstance(metrics, dict) or not metrics:
        raise DataError(f"{path}: 'metrics' must be a non-empty mapping of metric name to value")
    # a file inside the pipeline layout (.../runs/<run>/seed<seed>/metrics.json) must describe that run and seed
    m = re.fullmatch(r"seed(-?\d+)", path.parent.name)
    if m and path.parent.parent.parent.name == "runs":
        if path.parent.parent.name != run or int(m.group(1)) != seed:
            raise DataError(f"{path}: holds run '{run}' seed {seed}, but its folder is for run "
                            f"'{path.parent.parent.name}' seed {m.group(1)}")
    rows = []
    for name, value in metrics.items():
        if value is None:  # not applicable (e.g. APl without large objects): as if absent
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise DataError(f"{path}: metric '{name}' must be a finite number, got {value!r}")
        rows.append({"run": run, "seed": seed, "metric": str(name), "value": float(value), "source": str(path),
                     "device": raw.get("device_name")})
    return run, seed, rows


def load_metrics(paths: Iterable) -> pd.DataFrame:
    """Per-run metrics files -> one row per (run, seed, metric): run, seed, metric, value, source, device.

    ``source`` is the file the value came from (used to name it in later errors); ``device`` the file's
    ``device_name`` (speed measurements), else None. Several files may describe one (run, seed), but a metric
    given twice for the same (run, seed) is a :class:`DataError`.
    """
    rows: List[dict] = []
    seen = {}
    for p in paths:
        path = Path(p)
        run, seed, file_rows = _load_one_metrics(path)
        for rec in file_rows:  # several files may describe one (run, seed), e.g. metrics.json + complexity.json
            key = (run, seed, rec["metric"])
            if key in seen:
                raise DataError(f"{path}: metric '{rec['metric']}' of run '{run}' seed {seed} already given by "
                                f"{seen[key]}")
            seen[key] = path
        rows.extend(file_rows)
    df = pd.DataFrame(rows, columns=["run", "seed", "metric", "value", "source", "device"])
    df["seed"] = df["seed"].astype("int64")
    df["value"] = df["value"].astype("float64")
    return df
