"""Check the datasets an mmdet config points at before any training or evaluation starts."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from ..errors import ConfigError
from .annotations import validate_coco, validate_voc


def validate_dataset_config(ds: dict, classes: Optional[Sequence[str]] = None) -> None:
    """One-line DataError for a missing/malformed dataset of a Coco/VOC (Concat/Repeat) dataset config."""
    kind = ds.get("type")
    if kind in ("RepeatDataset", "ClassBalancedDataset"):
        return validate_dataset_config(ds["dataset"], classes)
    if kind == "ConcatDataset":
        for part in ds["datasets"]:
            validate_dataset_config(part, classes)
        return
    root = Path(ds["data_root"])
    if kind == "CocoDataset":
        validate_coco(root / ds["ann_file"], root / ds["data_prefix"]["img"])
    elif kind == "VOCDataset":
        ann = Path(ds["ann_file"])  # <folder>/ImageSets/Main/<split>.txt
        classes = classes or (ds.get("metainfo") or {}).get("classes")
        validate_voc(root, year=str(ann.parent.parent.parent), split=ann.stem, classes=classes)
    else:
        raise ConfigError(f"dataset type '{kind}' is not one this pipeline checks (CocoDataset, VOCDataset)")
