"""Datasets of the user's own (``--config dataset=<file>`` / ``voc_dataset=<file>``): the checked dataset
(:class:`UserDataset`, made by :func:`ld_core.config.dataset_file.load_user_dataset`) and its classes.

COCO format: the classes are the train annotation file's ``categories`` in file order (mmdet numbers labels in
that order, in training and in evaluation), so train and val must list the same categories in the same order.
VOC format: the file lists the classes. Everything here runs when the Snakefile is parsed; the full check of
every image and annotation is the dataset-check job (``ld_core check-data --dataset``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Tuple

from ..check_cache import CheckCache
from ..errors import DataError, one_line


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


def _categories(ann: Path) -> list:
    """[(id, name), ...] of a COCO annotation file's categories, in file order."""
    try:
        data = json.loads(ann.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{ann}: cannot be read ({one_line(exc)})") from None
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


def cached_coco_classes(train_ann: Path, val_ann: Path, cache_dir: Optional[str | Path]):
    """:func:`coco_classes`, remembered per file identity in ``cache_dir`` (a COCO-size file parses in seconds)."""
    if cache_dir is None:
        return coco_classes(train_ann, val_ann)
    cache = CheckCache(cache_dir)
    val_stat = val_ann.stat()
    spec = dict(val=str(val_ann), size=val_stat.st_size, mtime_ns=val_stat.st_mtime_ns)
    summary, _ = cache.check("coco-classes", train_ann, spec,
                             lambda: json.dumps(list(coco_classes(train_ann, val_ann))))
    return tuple(json.loads(summary))
