"""`ld_core export`: a trained student as a stock mmdetection model, ``DIR/config.py`` + ``DIR/checkpoint.pth``.

The student is loaded by :mod:`ld_core.models.trained` (weights that fit, all finite). The config keeps what
inference and ``tools/test.py`` need (:data:`KEEP`: model, test pipeline, dataloader, evaluator and runtime
settings; data paths made absolute) and drops the rest (training, teacher, ``custom_imports``, ``ld_repro``).
Heads and ops with a stock twin that computes the same at inference are renamed to it (:data:`STOCK_TYPES`;
LD heads already are, by :func:`ld_core.student.student_head`). Whatever is still ld_core's own (the
distribution heads of Table 3 and their box coder, the torch DCN op ``DCNTorch``) is imported through
``custom_imports``, and said so on stdout.
The checkpoint is ``{'state_dict': tensors, 'meta': {'dataset_meta': {'classes': [...]}}}``: tensors and plain
Python values only, so ``mmdet.apis.init_detector`` loads it under ``torch.load(weights_only=True)`` as is.
"""
from __future__ import annotations

import argparse
import copy
import os
import shutil
import tempfile
from pathlib import Path

import mmdet.registry
from mmdet.registry import DATASETS
from mmengine.registry import Registry

from ..config.resolve import config_text
from ..errors import ConfigError
from ..files import atomic_write_text
from ..models.checkpoints import save_tensor_state_dict
from ..models.trained import load_run

KEEP = ("default_scope", "model", "test_dataloader", "test_evaluator", "test_cfg", "default_hooks", "env_cfg",
        "vis_backends", "visualizer", "log_processor", "log_level")
# ours -> stock mmdet type, the same at inference: BatchedGFLHead changes only GFLHead's training targets.
# Not DCNTorch -> mmcv's DCN: same keys and, mostly, the same output to float rounding, but mmcv's op refuses
# feature maps smaller than its kernel (measured: the tiny scale's last stages), so it stays ld_core's.
STOCK_TYPES = {"BatchedGFLHead": "GFLHead"}


def _walk(node, fn) -> None:
    """Call ``fn`` on every dict of a nested config."""
    if isinstance(node, dict):
        fn(node)
        for value in node.values():
            _walk(value, fn)
    elif isinstance(node, (list, tuple)):
        for value in node:
            _walk(value, fn)


def _stock_names(node: dict) -> None:
    if node.get("type") in STOCK_TYPES:
        node["type"] = STOCK_TYPES[node["type"]]


def _absolute_paths(node: dict) -> None:
    if node.get("data_root"):
        node["data_root"] = os.path.abspath(node["data_root"])
    elif isinstance(node.get("ann_file"), str) and node["ann_file"]:  # relative to data_root where there is one
        node["ann_file"] = os.path.abspath(node["ann_file"])


def ld_core_types(cfg: dict) -> dict:
    """``{type name: ld_core module}`` of the registered types of ``cfg`` that are ld_core's own."""
    registries = [r for r in vars(mmdet.registry).values() if isinstance(r, Registry)]
    found = {}

    def check(node: dict) -> None:
        name = node.get("type")
        if not isinstance(name, str):
            return
        for registry in registries:
            cls = registry.get(name)
            if cls is not None:
                if cls.__module__.split(".")[0] == "ld_core":
                    found[name] = cls.__module__
                return

    _walk(cfg, check)
    return found


def export_config(student_cfg: dict) -> tuple:
    """``(config dict, {ld_core type: module})``: the inference config of a student config (see the module doc)."""
    cfg = {key: copy.deepcopy(student_cfg[key]) for key in KEEP if key in student_cfg}
    cfg.setdefault("default_scope", "mmdet")
    cfg["model"].get("backbone", {}).pop("init_cfg", None)  # the ImageNet file training started from
    _walk(cfg["model"], _stock_names)
    for key in ("test_dataloader", "test_evaluator"):
        _walk(cfg.get(key), _absolute_paths)
    own = ld_core_types(cfg)
    if own:
        packages = sorted({".".join(module.split(".")[:2]) for module in own.values()})
        cfg["custom_imports"] = dict(imports=packages, allow_failed_imports=False)
    return cfg, own


def _classes(student) -> list:
    """The class names of the student's test dataset (its metainfo, else the dataset type's own)."""
    if student.config.classes:
        return [str(c) for c in student.config.classes]
    dataset = copy.deepcopy(student.cfg["test_dataloader"]["dataset"])
    dataset["lazy_init"] = True
    return [str(c) for c in DATASETS.build(dataset).metainfo["classes"]]


def _write_folder(out: Path, files: dict, force: bool) -> None:
    """Write ``files`` ({name: callable(path)}) into a temporary folder beside ``out``, then rename it into place
    (an existing ``out`` is replaced only with ``force``); nothing partial is left on failure."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    old = None
    try:
        for name, write in files.items():
            write(tmp / name)
        os.chmod(tmp, 0o777 & ~_umask())
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".old"))
            os.replace(out, old / "previous")
        os.replace(tmp, out)  # onto an empty folder or no folder
    except BaseException:
        if old is not None and (old / "previous").exists() and not out.exists():
            os.replace(old / "previous", out)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def export(run_dir, out, *, force: bool = False) -> dict:
    """Export the run folder ``run_dir`` to ``out``; returns ``dict(out, stock, ld_core_types, classes)``."""
    out = Path(out)
    if out.exists() and not force and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{out}: exists and is not empty (use --force to replace it)")
    student = load_run(run_dir)
    cfg, own = export_config(student.cfg)
    classes = _classes(student)
    state = {k: v.detach().cpu() for k, v in student.model.state_dict().items()}
    meta = {"dataset_meta": {"classes": classes}}
    _write_folder(out, {"config.py": lambda path: atomic_write_text(path, config_text(cfg)),
                        "checkpoint.pth": lambda path: save_tensor_state_dict(state, path, meta)}, force)
    return dict(out=str(out), stock=not own, ld_core_types=own, classes=classes,
                imports=cfg.get("custom_imports", {}).get("imports", []),
                detector=cfg["model"]["type"], head=cfg["model"]["bbox_head"]["type"])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-dir", required=True, help="results/runs/<run>/seed<k> (config.py + checkpoint.pth)")
    parser.add_argument("--out", required=True, help="folder for config.py + checkpoint.pth")
    parser.add_argument("--force", action="store_true", help="replace a non-empty --out")


def run(args: argparse.Namespace) -> int:
    result = export(args.run_dir, args.out, force=args.force)
    what = f"{result['detector']} + {result['head']}"
    if result["stock"]:
        print(f"[export] {args.run_dir} -> {result['out']}: stock mmdetection ({what}); no ld_core needed")
    else:
        own = ", ".join(sorted(result["ld_core_types"]))
        print(f"[export] {args.run_dir} -> {result['out']}: needs ld_core ({what}; {own}: not in stock mmdetection "
              f"or mmcv; the config imports {', '.join(result['imports'])})")
    return 0
