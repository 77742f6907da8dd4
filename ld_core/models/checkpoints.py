"""Checkpoint files: tensor-only checkpoints (torch >= 2.6 safe), foreign checkpoints (released teachers, ImageNet
backbones, mmengine's own) read with ``weights_only=True`` and an allow-list, and the key/shape comparison of a
state dict with a model's (:func:`fit_problem`)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Optional

import torch

from ..errors import ConfigError, one_line, require_file
from ..files import atomic_output


def save_tensor_checkpoint(model: torch.nn.Module, path: str | os.PathLike, meta: Mapping | None = None) -> Path:
    """Save ``{'state_dict': tensors, 'meta': plain values}`` atomically; loadable with ``weights_only=True``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return _save_atomic({"state_dict": state, "meta": dict(meta or {})}, path)


def _save_atomic(payload: Mapping, path: Path) -> Path:
    """``torch.save`` through :func:`ld_core.files.atomic_output` (a temporary file of a unique name, removed on
    failure). Through a Python file object a full disk is ``OSError: No space left on device``, not torch's
    ``unexpected pos`` of a path."""
    with atomic_output(path) as handle:
        torch.save(payload, handle)
    return path


def load_tensor_state_dict(path: str | os.PathLike) -> dict:
    """Load a tensor-only checkpoint with ``weights_only=True``; a clear one-line error otherwise."""
    path = require_file(path, "checkpoint file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors are multi-line: one line, what the file holds
        raise ConfigError(_load_error(path, exc)) from None
    if isinstance(payload, Mapping) and "state_dict" in payload:
        payload = payload["state_dict"]
    if not isinstance(payload, Mapping):
        raise ConfigError(f"{path}: checkpoint holds no state dict")
    return dict(payload)


# ------------------------------------------------------------------------------------------- foreign checkpoints
# Checkpoints the pipeline did not write itself: released teachers (mmdetection's model zoo, saved by mmcv 1.x or
# by mmengine), ImageNet backbones (torchvision, open-mmlab), mmengine's own resumable checkpoints. They are
# loaded with ``torch.load(weights_only=True)`` and an allow-list of exactly the non-tensor types such files hold
# (found by writing them with mmengine 0.10.7 and listing ``torch.serialization.get_unsafe_globals_in_checkpoint``:
# mmengine.logging.history_buffer.HistoryBuffer, builtins.getattr, numpy.ndarray, numpy.dtype and numpy's
# ``_reconstruct``/``scalar``; everything else in them - meta strings, tuples of class names, the optimizer's and
# the schedulers' state (collections.Counter included) - is a type torch allows anyway). Never weights_only=False.

NUMPY_DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                "float16", "float32", "float64")  # of the numpy arrays/scalars in mmengine's message hub
NON_WEIGHT_SUFFIXES = (".num_batches_tracked",)  # BN step counters: absent from old torchvision files, unused in eval


def _history_buffer_statistic(obj, name: str):
    """``builtins.getattr`` as mmengine checkpoints use it: the message hub's HistoryBuffers pickle their
    statistics methods as ``getattr(HistoryBuffer, 'mean')``. Only those attributes, nothing else."""
    import pickle

    from mmengine.logging.history_buffer import HistoryBuffer

    allowed = {"min", "max", "current", "mean", *HistoryBuffer._statistics_methods}  # built-ins + registered
    if (obj is HistoryBuffer or isinstance(obj, HistoryBuffer)) and name in allowed:
        return getattr(obj, name)
    raise pickle.UnpicklingError(f"checkpoint asks for attribute {name!r} of a {type(obj).__name__}: "
                                 "only HistoryBuffer statistics are allowed")


def checkpoint_safe_globals() -> list:
    """The allow-list for ``torch.load(weights_only=True)`` of mmengine / mmcv 1.x checkpoints: numpy arrays,
    scalars and numeric dtypes (the message hub's logs, under numpy 1 and 2 module names), mmengine's
    ``HistoryBuffer`` and the restricted ``getattr`` above. For ``torch.serialization.safe_globals(...)`` or
    ``add_safe_globals(...)``."""
    import importlib

    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer

    name = "numpy._core.multiarray" if int(np.__version__.split(".")[0]) >= 2 else "numpy.core.multiarray"
    multiarray = importlib.import_module(name)
    safe = [np.ndarray, np.dtype, HistoryBuffer, (_history_buffer_statistic, "builtins.getattr")]
    safe += sorted({type(np.dtype(t)) for t in NUMPY_DTYPES}, key=str)  # numpy >= 1.25: one class per dtype
    for module in ("numpy._core.multiarray", "numpy.core.multiarray"):  # checkpoints of numpy 2 and numpy 1
        safe += [(multiarray._reconstruct, f"{module}._reconstruct"), (multiarray.scalar, f"{module}.scalar")]
    return safe


def _pickle_globals(path: Path) -> list:
    """``module.name`` of every global the pickles of a checkpoint file would import, read with pickletools
    (nothing is executed): ``data.pkl`` of a zip checkpoint, else each pickle of a legacy or plain pickle file."""
    import io
    import pickletools
    import zipfile

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                data = b"".join(archive.read(n) for n in archive.namelist() if n.endswith("data.pkl"))
        else:
            data = path.read_bytes()
    except (OSError, zipfile.BadZipFile):
        return []
    found, pushed, memo = [], [], {}  # pushed: what each opcode put on the stack (strings; None otherwise)
    stream = io.BytesIO(data)
    try:
        while stream.tell() < len(data):
            for op, arg, _ in pickletools.genops(stream):
                if op.name in ("GLOBAL", "INST"):
                    found.append(str(arg).replace(" ", "."))
                elif op.name == "STACK_GLOBAL" and len(pushed) >= 2 and None not in pushed[-2:]:
                    found.append(f"{pushed[-2]}.{pushed[-1]}")
                elif op.name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
                    memo[len(memo) if op.name == "MEMOIZE" else arg] = pushed[-1] if pushed else None
                elif op.name in ("GET", "BINGET", "LONG_BINGET"):
                    pushed.append(memo.get(arg))
                elif op.stack_after:
                    pushed.append(arg if isinstance(arg, str) else None)
    except Exception:  # the raw storage bytes after a legacy file's pickles, or a cut file: stop there
        pass
    return list(dict.fromkeys(found))


def _refused_global(path: Path, text: str) -> Optional[str]:
    """The global a weights_only load refused (named in torch's message, or found in the file's pickles and
    not allowed), or None."""
    import re

    found = re.search(r"GLOBAL ([\w.]+)", text)
    if found:
        return found.group(1)
    asked = re.search(r"asks for attribute ('[^']*') of a (\w+)", text)  # the restricted getattr
    if asked:
        return f"builtins.getattr({asked.group(2)}, {asked.group(1)})"
    try:
        from torch._weights_only_unpickler import _get_allowed_globals

        allowed = set(_get_allowed_globals())
    except Exception:  # a private torch helper: without it only torch's own names count as allowed
        allowed = set()
    allowed |= {entry[1] if isinstance(entry, tuple) else f"{entry.__module__}.{entry.__qualname__}"
                for entry in checkpoint_safe_globals()}
    return next((name for name in _pickle_globals(path)
                 if name not in allowed and not name.startswith("torch.")), None)


def _load_error(path: Path, exc: BaseException) -> str:
    """One line for a torch.load failure: a pickle that would load code (a refused global) is named as such,
    a truncated file says so; never torch's advice to retry with ``weights_only=False``."""
    import re

    inner = exc.__context__ if exc.__context__ is not None else exc  # torch re-raises the unpickler's error
    text = f"{exc}\n{inner}"
    name = _refused_global(path, text)
    if name:
        return (f"{path}: refused: the checkpoint holds code, not tensors (its pickle would load {name}, which is "
                "not on the allow-list of checkpoint types: tensors, numpy arrays, mmengine HistoryBuffer; "
                "weights_only=True)")
    found = re.search(r"WeightsUnpickler error:\s*([^\n]+)", str(exc))
    if found:
        reason = " ".join(found.group(1).split())
    elif inner is not exc and str(inner).strip():
        reason = one_line(inner)[:300]
    else:
        reason = one_line(exc)[:300] or type(exc).__name__
    return f"{path}: cannot read the checkpoint (truncated, corrupt or not a torch file: {reason})"


def read_checkpoint(path: str | os.PathLike, *, detector: bool = True) -> tuple:
    """``(state_dict, info)`` of a checkpoint file in any of the formats released weights come in.

    Formats: ``{'meta': ..., 'state_dict': ...}`` as saved by mmengine (``message_hub``, ``optimizer``,
    ``param_schedulers`` beside it) and by mmcv 1.x / mmdet 2.x (``meta.mmcv_version``, ``meta.CLASSES``,
    ``optimizer``), this pipeline's tensor-only files, ``{'model': state_dict}``, or a bare state dict (torchvision).
    A ``module.`` prefix (DataParallel) is stripped; for ``detector`` files, a single-stage detector saved with its
    head as ``rpn_head`` is renamed to ``bbox_head`` as mmdet's ``SingleStageDetector`` does on load. ``info``:
    ``format``, ``version`` (the meta's mmdet/mmengine/mmcv version when present), ``classes`` (a tuple or None).
    Every problem is one :class:`ConfigError` line naming the file.
    """
    import zipfile

    path = require_file(path, "checkpoint file")
    if path.stat().st_size == 0:
        raise ConfigError(f"{path}: checkpoint file is empty")
    try:
        mmap = zipfile.is_zipfile(path)  # torch >= 1.6 format: read lazily (shapes are all a check needs)
        with torch.serialization.safe_globals(checkpoint_safe_globals()):
            payload = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:  # pickle/zip errors are multi-line; keep what matters
        raise ConfigError(_load_error(path, exc)) from None
    meta = payload.get("meta") if isinstance(payload, Mapping) else None
    meta = meta if isinstance(meta, Mapping) else {}
    if isinstance(payload, Mapping) and isinstance(payload.get("state_dict"), Mapping):
        state = payload["state_dict"]
        if "message_hub" in payload or "mmengine_version" in meta:
            fmt, version = "mmengine checkpoint", meta.get("mmengine_version")
        elif "mmcv_version" in meta or str(meta.get("mmdet_version", "")).startswith(("1.", "2.")):
            fmt, version = "mmcv 1.x checkpoint", meta.get("mmdet_version") or meta.get("mmcv_version")
        else:
            fmt, version = "checkpoint with a state_dict", None
    elif isinstance(payload, Mapping) and isinstance(payload.get("model"), Mapping):
        state, fmt, version = payload["model"], "checkpoint with a 'model' state dict", None
    elif isinstance(payload, Mapping) and payload and all(torch.is_tensor(v) for v in payload.values()):
        state, fmt, version = payload, "bare state dict", None
    else:
        keys = ", ".join(map(str, list(payload)[:5])) if isinstance(payload, Mapping) else type(payload).__name__
        raise ConfigError(f"{path}: checkpoint holds no state dict (found: {keys or 'an empty mapping'})")
    bad = [k for k, v in state.items() if not torch.is_tensor(v)]
    if bad:
        raise ConfigError(f"{path}: state dict entry '{bad[0]}' is a {type(state[bad[0]]).__name__}, not a tensor")
    if not state:
        raise ConfigError(f"{path}: the checkpoint's state dict is empty")
    state = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}
    heads = {k.split(".", 1)[0] for k in state}
    if detector and "bbox_head" not in heads and "rpn_head" in heads:
        state = {("bbox_head." + k[len("rpn_head."):] if k.startswith("rpn_head.") else k): v for k, v in state.items()}
    classes = meta.get("CLASSES") or (meta.get("dataset_meta") or {}).get("classes")
    info = dict(format=fmt, version=None if version is None else str(version),
                classes=tuple(classes) if isinstance(classes, (list, tuple)) else None)
    return dict(state), info


def _shape(value) -> tuple:
    return tuple(int(s) for s in (value.shape if hasattr(value, "shape") else value))


def _listed(keys, limit: int = 3) -> str:
    keys = list(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def _hints(missing, unexpected, mismatched, expected, found) -> list:
    """Why a file does not fit, in the words of the config: depth, reg_max, classes, a classification file."""
    import re

    hints = []
    if not any(k in expected for k in found):
        heads = sorted({k.split(".")[0] for k in found})
        if "fc.weight" in found:
            hints.append("it is an ImageNet classification checkpoint (keys conv1.weight ... fc.weight), "
                         "not a detector")
        elif any(f"backbone.{k}" in expected for k in found):
            hints.append("it holds backbone weights only (keys conv1.weight, layer1..., no backbone./neck./"
                         "bbox_head. prefix), not a detector")
        else:
            hints.append(f"none of its keys is a key of the model (its top-level names: {_listed(heads)})")

    def blocks(keys, stage):
        found_ids = {int(m.group(1)) for k in keys for m in [re.search(rf"(?:^|\.)layer{stage}\.(\d+)\.", k)] if m}
        return max(found_ids) + 1 if found_ids else 0

    if missing or unexpected:
        for stage in (2, 3, 4):
            a, b = blocks(found, stage), blocks(expected, stage)
            if a and b and a != b:
                hints.append(f"the file's backbone has {a} blocks in stage {stage}, the model {b} (another depth)")
                break
    for key, (got, want) in mismatched.items():
        if key.endswith("integral.project"):
            hints.append(f"reg_max {got[0] - 1} in the file vs {want[0] - 1} in the model")
        elif re.search(r"(gfl_cls|retina_cls|atss_cls|conv_cls)\.weight$", key):
            hints.append(f"{got[0]} class outputs in the file vs {want[0]} in the model ({key})")
    return hints


def fit_problem(expected: Mapping, found: Mapping, *, may_miss=(), may_add=()) -> Optional[str]:
    """``None`` if ``found`` (key -> tensor or shape) has exactly the keys and shapes of ``expected``; else one
    line naming the first mismatching shapes, missing and unexpected keys (and what they suggest).
    ``may_miss``/``may_add``: regular expressions of keys that may be missing from / extra in ``found``
    (BN ``num_batches_tracked`` counters always may)."""
    import re

    def matches(patterns, key):
        return key.endswith(NON_WEIGHT_SUFFIXES) or any(re.search(p, key) for p in patterns)

    exp = {k: _shape(v) for k, v in expected.items()}
    got = {k: _shape(v) for k, v in found.items()}
    missing = [k for k in exp if k not in got and not matches(may_miss, k)]
    unexpected = [k for k in got if k not in exp and not matches(may_add, k)]
    mismatched = {k: (got[k], exp[k]) for k in exp if k in got and got[k] != exp[k]}
    if not (missing or unexpected or mismatched):
        return None
    parts = []
    if mismatched:
        shown = "; ".join(f"{k}: {list(a)} in the file vs {list(b)} in the model"
                          for k, (a, b) in list(mismatched.items())[:3])
        more = f"; ... ({len(mismatched) - 3} more)" if len(mismatched) > 3 else ""
        parts.append(f"{len(mismatched)} shape mismatch{'es' if len(mismatched) > 1 else ''} ({shown}{more})")
    if missing:
        parts.append(f"{len(missing)} missing key{'s' if len(missing) > 1 else ''} ({_listed(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key{'s' if len(unexpected) > 1 else ''} ({_listed(unexpected)})")
    hints = _hints(missing, unexpected, mismatched, exp, got)
    return ", ".join(parts) + (f"; {'; '.join(hints)}" if hints else "")


def save_tensor_state_dict(state: Mapping, path: str | os.PathLike, meta: Mapping | None = None) -> Path:
    """Save ``{'state_dict': tensors, 'meta': plain values}`` atomically (as :func:`save_tensor_checkpoint`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"state_dict": {k: v.detach().cpu().contiguous() for k, v in state.items()}, "meta": dict(meta or {})}
    return _save_atomic(payload, path)
