"""The dataset files of the user's own (``--config dataset=<file>`` / ``voc_dataset=<file>``): a small YAML file
(``workflow/schemas/dataset.schema.yaml``) naming the annotation files and image folders, read and checked when
the Snakefile is parsed into a :class:`~ld_core.data.user_dataset.UserDataset` (paths, classes, expected counts).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from ..data.user_dataset import UserDataset, cached_coco_classes
from ..errors import ConfigError, DataError, require_file
from ..files import load_yaml_file
from .file_checks import schemas

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "workflow" / "schemas"


def dataset_cache(results: str | Path) -> Path:
    """Where the class lists read from the user's annotation files are remembered."""
    return Path(results) / "checks" / "datasets"


def _check_folder(path: Path, source: Path, what: str) -> None:
    if not path.is_dir():
        raise ConfigError(f"{source}: {what} {path} does not exist")


def _check_file(path: Path, source: Path, what: str) -> None:
    if not path.is_file():
        raise ConfigError(f"{source}: {what} {path} does not exist")


def load_user_dataset(file: str | Path, slot: str, *, schema_dir: str | Path = SCHEMA_DIR,
                      cache_dir: Optional[str | Path] = None) -> UserDataset:
    """Read and check a dataset file for ``slot`` (``coco``: in COCO's place, ``voc``: in VOC's place)."""
    path = require_file(Path(os.path.expanduser(str(file))).resolve(), "dataset file")
    spec = schemas(str(schema_dir)).check("dataset", load_yaml_file(path, "dataset file"), path)
    fmt = spec["format"]
    if fmt != slot:
        key = "dataset" if slot == "coco" else "voc_dataset"
        raise ConfigError(f"{path}: format '{fmt}' cannot be the {key} (it takes {slot}-format datasets: "
                          f"{'--config dataset=<coco file>' if fmt == 'coco' else '--config voc_dataset=<voc file>'})")
    root = (path.parent / os.path.expanduser(spec["root"])).resolve()
    _check_folder(root, path, "root")
    expect = {k: v for k, v in (spec.get("expect") or {}).items() if v is not None}
    name = spec.get("name", path.stem)
    stray = {"coco": "test", "voc": "val"}[fmt]
    if stray in spec:
        raise ConfigError(f"{path}: {stray}: not a key of a {fmt}-format dataset (it has "
                          f"{'train and val' if fmt == 'coco' else 'train and test'})")
    if fmt == "coco":
        if "classes" in spec:
            raise ConfigError(f"{path}: classes: a COCO-format dataset takes its classes from the annotation files' "
                              "categories; remove the list")
        splits = []
        for key in ("train", "val"):
            ann, img = root / spec[key]["ann"], root / spec[key]["img"]
            _check_file(ann, path, f"{key}.ann")
            _check_folder(img, path, f"{key}.img")
            splits.append((str(ann), str(img)))
        try:
            classes = cached_coco_classes(Path(splits[0][0]), Path(splits[1][0]), cache_dir)
        except DataError as exc:
            raise ConfigError(str(exc)) from None
        return UserDataset(str(path), fmt, name, str(root), tuple(splits[0]), tuple(splits[1]), classes, expect)
    parts = {}
    for key in ("train", "test"):
        entries = []
        for index, entry in enumerate(spec[key]):
            split_file = root / entry["folder"] / "ImageSets" / "Main" / f"{entry['split']}.txt"
            _check_file(split_file, path, f"{key}[{index}] split file")
            entries.append((entry["folder"], entry["split"]))
        parts[key] = tuple(entries)
    return UserDataset(str(path), fmt, name, str(root), parts["train"], parts["test"], tuple(spec["classes"]), expect)
