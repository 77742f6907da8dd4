"""Datasets of the user's own (``--config dataset=<file>`` / ``voc_dataset=<file>``): a small YAML file
(``workflow/schemas/dataset.schema.yaml``) naming the annotation files and image folders.

COCO format: the classes are the train annotation file's ``categories`` in file order (mmdet numbers labels in
that order, in training and in evaluation), so train and val must list the same categories in the same order.
VOC format: the file lists the classes. Everything here runs when the Snakefile is parsed; the full check of
every image and annotation is the dataset-check job (``ld_core check-data --dataset``).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Tuple

from ..errors import ConfigError, DataError
from ..io import load_yaml_file

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "workflow" / "schemas"


@dataclass(frozen=True)
class UserDataset:
    """A checked dataset file: absolute paths, classes, expected image counts."""

    path: str
    format: str                     # coco | voc
    name: str
    root: str
    train: tuple                    # coco: (ann, img); voc: ((folder, split), ...)
    test: tuple                     # coco: (ann, img) of val; voc: ((folder, split),)
    classes: Tuple[str, ...] = ()
    expect: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """What a resolved config depends on (the Snakemake params trigger of resolve_config)."""
        return dict(path=self.path, format=self.format, root=self.root, train=self.train, test=self.test,
                    classes=self.classes)


def _check_folder(path: Path, source: Path, what: str) -> None:
    if not path.is_dir():
        raise ConfigError(f"{source}: {what} {path} does not exist")


def _check_file(path: Path, source: Path, what: str) -> None:
    if not path.is_file():
        raise ConfigError(f"{source}: {what} {path} does not exist")


def _categories(ann: Path) -> list:
    """[(id, name), ...] of a COCO annotation file's categories, in file order."""
    try:
        data = json.loads(ann.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{ann}: cannot be read ({' '.join(str(exc).split())})") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{ann}: malformed JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    cats = data.get("categories") if isinstance(data, dict) else None
    if not isinstance(cats, list) or not cats:
        raise DataError(f"{ann}: no 'categories' list (a COCO detection file lists its classes there)")
    out, names = [], {}
    for index, cat in enumerate(cats):
        if not isinstance(cat, dict) or not isinstance(cat.get("id"), int) or not isinstance(cat.get("name"), str):
            raise DataError(f"{ann}: category entry {index} must be an object with an integer 'id' and a string 'name'")
        if cat["name"] in names:
            raise DataError(f"{ann}: category name '{cat['name']}' is used twice (ids {names[cat['name']]} and "
                            f"{cat['id']}); mmdet tells classes apart by name")
        names[cat["name"]] = cat["id"]
        out.append((cat["id"], cat["name"]))
    return out


def coco_classes(train_ann: str | Path, val_ann: str | Path) -> Tuple[str, ...]:
    """Class names of a COCO-format dataset; train and val must agree (ids, names and order)."""
    train, val = _categories(Path(train_ann)), _categories(Path(val_ann))
    if train != val:
        if sorted(train) == sorted(val):
            raise DataError(f"{val_ann}: lists the categories of {train_ann} in another order (mmdet numbers the "
                            "classes in file order: list them in the same order)")
        first = next((f"id {i} '{n}'" for i, n in val if (i, n) not in train),
                     next((f"id {i} '{n}' is missing" for i, n in train if (i, n) not in val), ""))
        raise DataError(f"{val_ann}: categories do not match those of {train_ann} ({len(val)} vs {len(train)}; "
                        f"first difference: {first})")
    return tuple(name for _, name in train)


def _cached_coco_classes(train_ann: Path, val_ann: Path, cache_dir: Optional[str | Path]):
    """:func:`coco_classes`, remembered per file identity in ``cache_dir`` (a COCO-size file parses in seconds)."""
    if cache_dir is None:
        return coco_classes(train_ann, val_ann)
    from ..config.weights import CheckCache

    cache = CheckCache(cache_dir)
    val_stat = val_ann.stat()
    spec = dict(val=str(val_ann), size=val_stat.st_size, mtime_ns=val_stat.st_mtime_ns)
    summary, _ = cache.check("coco-classes", train_ann, spec,
                             lambda: json.dumps(list(coco_classes(train_ann, val_ann))))
    return tuple(json.loads(summary))


def load_user_dataset(file: str | Path, slot: str, *, schema_dir: str | Path = SCHEMA_DIR,
                      cache_dir: Optional[str | Path] = None) -> UserDataset:
    """Read and check a dataset file for ``slot`` (``coco``: in COCO's place, ``voc``: in VOC's place)."""
    from ..config.validate import schemas

    path = Path(os.path.expanduser(str(file))).resolve()
    if not path.is_file():
        raise ConfigError(f"{path}: dataset file does not exist")
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
            classes = _cached_coco_classes(Path(splits[0][0]), Path(splits[1][0]), cache_dir)
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
