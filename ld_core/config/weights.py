"""The user's weight files, checked when the Snakefile is parsed: before any job starts or is submitted.

* ``teacher_checkpoints`` (pipeline config: teacher run id -> file): released teachers used instead of training
  them. The run must exist and be some run's teacher, the file must exist, and its keys and shapes must be
  exactly those of the teacher's model as the pipeline resolves it (``build_run_config`` -> mmdet's ``MODELS``
  on the meta device; :func:`ld_core.models.fitting.fit_detector`).
* ``pretrained_dir`` (scales with ``model.pretrained``): the ImageNet file of every backbone that is trained
  (``resnet18.pth`` ... ``resnext101_32x4d.pth``) must exist and hold that backbone's tensors
  (:func:`ld_core.models.fitting.fit_backbone`). Without ``pretrained_dir`` mmengine would download
  ``torchvision://`` / ``open-mmlab://`` weights inside the training jobs (nodes without internet fail there,
  hours into a queue): that needs ``allow_downloads: true``.

A key/shape check costs seconds (measured on 2 busy CPU cores: a paper-scale dry run of Table 1 takes 2.8 s
without it, 9-10 s with the full-size R-101 teacher file and resnet18.pth checked, almost all of it importing
torch and mmdet; reading the 206 MB file takes 0.15-0.3 s, the model is built on the meta device), so a passed
check is cached in ``<results>/checks/weights/``, keyed by the file's path,
size and mtime and the model config it was checked against: the next parse (every dry run, every SLURM job)
does not import torch at all. Existence and cross-reference checks run every time. The first problem is one
:class:`~ld_core.errors.ConfigError` line ``<file>: <problem>``. ``pipe``: the
:class:`~ld_core.config.pipeline.Pipeline` being loaded (not imported here: the pipeline imports this module).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Dict, List

from ..check_cache import CheckCache
from ..errors import ConfigError, name_list, require_dir, require_file
from .builder import dataset_classes
from .resolve import resolve_run_config


def teacher_runs(matrix) -> Dict[str, List[int]]:
    """Run id -> the seeds at which some run of the matrix uses it as a teacher."""
    out: Dict[str, List[int]] = {}
    for rid in matrix.runs:
        teacher = matrix.teacher_of(rid)
        if teacher is not None and teacher[1] not in out.setdefault(teacher[0], []):
            out[teacher[0]].append(teacher[1])
    return out


def resolve_teacher_checkpoints(value, matrix, source: str) -> Dict[str, str]:
    """The validated ``teacher_checkpoints`` mapping, paths made absolute (relative to the working directory)."""
    if not value:
        return {}
    teachers = teacher_runs(matrix)
    out = {}
    for run_id, file in value.items():
        where = f"{source}: teacher_checkpoints.{run_id}"
        if run_id not in matrix.runs:
            raise ConfigError(f"{where}: '{run_id}' is not a run of {matrix.path} (teacher runs: {name_list(teachers)})")
        if run_id not in teachers:
            raise ConfigError(f"{where}: run '{run_id}' is not the teacher of any run of {matrix.path} "
                              f"(teacher runs: {name_list(teachers)})")
        if not isinstance(file, str) or not file.strip():
            raise ConfigError(f"{where}: expected a checkpoint file path, got {file!r}")
        path = require_file(Path(os.path.expanduser(file.strip())).resolve(),
                            f"teacher checkpoint of '{run_id}' (teacher_checkpoints)")
        out[run_id] = str(path)
    return out


# ----------------------------------------------------------------------------------------------- the checks


def _dataset_classes(pipe, dataset: str):
    """Class names the teacher's dataset has (for the file's meta CLASSES), as the resolved config sees them."""
    classes = dataset_classes(pipe.scale, pipe.user_datasets.get(dataset))
    if classes:
        return tuple(classes)
    from mmdet.datasets import CocoDataset, VOCDataset  # the user's data: mmdet's class names

    return tuple((VOCDataset if dataset == "voc" else CocoDataset).METAINFO["classes"])


def _run_config(pipe, run_id: str, seed: int) -> dict:
    """The resolved config of (run, seed) as a dict: what ``ld_core resolve`` writes to config.py."""
    c = pipe.config
    return resolve_run_config(pipe.matrix, run_id, seed, pipe.scale, results=pipe.results,
                              user_dataset=pipe.user_dataset(run_id), data_root=c["data_root"],
                              pretrained_dir=c["pretrained_dir"], voc_root=c["voc_root"], rehearsal=c["rehearsal"])


def _report(line: str) -> None:
    print(f"[check] {line}", file=sys.stderr, flush=True)


def check_teacher_files(pipe, cache: CheckCache) -> None:
    """Every imported teacher the selected tables need: its file fits the teacher's resolved model."""
    needed = set(pipe.jobs())
    for (run_id, seed), path in sorted(pipe.imported.items()):
        if (run_id, seed) not in needed:
            continue
        model_cfg = _run_config(pipe, run_id, seed)["model"]
        dataset = pipe.matrix.run(run_id).dataset
        spec = dict(model=model_cfg, scale=pipe.scale["name"], dataset=dataset)

        def run(model_cfg=model_cfg, run_id=run_id, seed=seed, path=path, dataset=dataset):
            start = time.perf_counter()  # imports included: torch + mmdet are most of it
            from ..models.fitting import fit_detector  # torch-free parse: torch only when a check is not cached

            _, _, summary = fit_detector(path, model_cfg, f"teacher {run_id} seed{seed}",
                                         classes=_dataset_classes(pipe, dataset))
            _report(f"teacher_checkpoints: {summary}: fits ({time.perf_counter() - start:.1f} s, cached)")
            return summary

        cache.check("teacher", path, spec, run)


def backbone_files(pipe) -> Dict[str, dict]:
    """ImageNet file -> {'backbone': backbone config (no init_cfg), 'runs': [run ids]} of the trained runs."""
    out: Dict[str, dict] = {}
    for run_id, seed in pipe.jobs():
        if (run_id, seed) in pipe.imported:
            continue  # an imported teacher is not trained: its backbone weights are in its file
        backbone = dict(_run_config(pipe, run_id, seed)["model"]["backbone"])
        init = backbone.pop("init_cfg", None) or {}
        ckpt = init.get("checkpoint") if init.get("type") == "Pretrained" else None
        if ckpt is None:
            continue
        entry = out.setdefault(str(ckpt), dict(backbone=backbone, runs=[]))
        if run_id not in entry["runs"]:
            entry["runs"].append(run_id)
    return out


def check_pretrained(pipe, cache: CheckCache, source: str) -> None:
    """Scales with ImageNet backbones: pretrained_dir (or allow_downloads), every file present and fitting."""
    if not pipe.scale["model"].get("pretrained"):
        return
    c = pipe.config
    if not c["pretrained_dir"]:
        if c["allow_downloads"]:
            return
        files = backbone_files(pipe)
        if not files:
            return  # every run that needs ImageNet weights is an imported teacher
        names = sorted({Path(f.split("://", 1)[-1]).name + ".pth" for f in files})
        raise ConfigError(f"{source}: the '{c['scale']}' scale starts every backbone from ImageNet weights: set "
                          f"pretrained_dir to a folder holding {', '.join(names)} (torchvision / open-mmlab "
                          f"files), e.g. --config pretrained_dir=/data/pretrained, or let the training jobs "
                          f"download them (torchvision:// and open-mmlab://, needs internet on the compute "
                          f"nodes) with --config allow_downloads=true")
    folder = require_dir(c["pretrained_dir"], "pretrained_dir")
    files = backbone_files(pipe)
    for file, entry in files.items():
        if not Path(file).is_file():
            present = sorted(p.name for p in folder.glob("*.pth"))
            raise ConfigError(f"{file}: ImageNet weights of runs {', '.join(entry['runs'])} do not exist "
                              f"(pretrained_dir {folder} holds: {name_list(present)})")
    for file, entry in files.items():
        def run(file=file, backbone=entry["backbone"]):
            start = time.perf_counter()
            from ..models.fitting import fit_backbone  # torch-free parse: torch only when a check is not cached

            summary = fit_backbone(file, backbone)
            _report(f"pretrained_dir: {summary} ({time.perf_counter() - start:.1f} s, cached)")
            return summary

        cache.check("backbone", file, entry["backbone"], run)


def check_weight_files(pipe, source: str) -> None:
    """All of the above, on a validated pipeline (:func:`ld_core.config.pipeline.load_pipeline`)."""
    cache = CheckCache(Path(pipe.results) / "checks" / "weights")
    check_teacher_files(pipe, cache)
    check_pretrained(pipe, cache, source)
