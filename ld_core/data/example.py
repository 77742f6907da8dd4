"""A small dataset laid out as a user's own would be, for the worked example of docs/own_dataset.md and the
tests (`python -m ld_core example-dataset`: :mod:`ld_core.commands.example_dataset`): classes, category ids and
folders unlike COCO's, in COCO format and in VOC format, each with its dataset file (``dataset.yaml``,
``dataset_voc.yaml``; schema ``workflow/schemas/dataset.schema.yaml``).

The images are the synthetic generator's (:mod:`ld_core.data.synthetic`), renamed: the four shapes become
``washer, bracket, wedge, rod`` with COCO category ids 12, 5, 30, 7 (listed in that order, not sorted).
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from ..errors import ConfigError
from .synthetic import CLASSES, generate

NAMES = ("washer", "bracket", "wedge", "rod")   # CLASSES[i] -> NAMES[i]
IDS = (12, 5, 30, 7)


def _coco(src: Path, out: Path) -> None:
    """labels/{train,val}.json and pictures/{train,val}/ from the synthetic COCO files."""
    for split in ("train", "val"):
        data = json.loads((src / "coco" / "annotations" / f"instances_{split}.json").read_text())
        new_id = {i + 1: IDS[i] for i in range(len(CLASSES))}
        data["categories"] = [{"id": IDS[i], "name": NAMES[i], "supercategory": "part"} for i in range(len(NAMES))]
        for ann in data["annotations"]:
            ann["category_id"] = new_id[ann["category_id"]]
        for img in data["images"]:
            name = Path(img["file_name"]).name
            dest = out / "pictures" / split / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / "coco" / "images" / img["file_name"], dest)
            img["file_name"] = name
        (out / "labels").mkdir(parents=True, exist_ok=True)
        (out / "labels" / f"{split}.json").write_text(json.dumps(data))
    (out / "dataset.yaml").write_text(
        "# A COCO-format dataset of your own (ld_core example-dataset); classes come from labels/*.json\n"
        "name: parts\nformat: coco\nroot: .\n"
        "train: {ann: labels/train.json, img: pictures/train}\n"
        "val: {ann: labels/val.json, img: pictures/val}\n")


def _voc(src: Path, out: Path) -> None:
    """voc/parts/ (Annotations, JPEGImages, ImageSets/Main) with the renamed classes."""
    dest = out / "voc" / "parts"
    shutil.copytree(src / "VOCdevkit" / "VOC2007", dest)
    rename = {f"<name>{old}</name>": f"<name>{new}</name>" for old, new in zip(CLASSES, NAMES)}
    for xml in (dest / "Annotations").glob("*.xml"):
        text = xml.read_text()
        for old, new in rename.items():
            text = text.replace(old, new)
        xml.write_text(text)
    (out / "dataset_voc.yaml").write_text(
        "# A VOC-format dataset of your own (ld_core example-dataset)\n"
        f"name: parts-voc\nformat: voc\nroot: voc\nclasses: [{', '.join(NAMES)}]\n"
        "train: [{folder: parts, split: trainval}]\n"
        "test: [{folder: parts, split: test}]\n")


def make_example(out, *, seed=0, num_train=48, num_val=24, image_size=96, max_objects=3) -> Path:
    """Write the example dataset into ``out`` (which must not exist) and return it."""
    out = Path(out).absolute()
    if out.exists():
        raise ConfigError(f"{out}: already exists (give a folder that does not exist yet)")
    with tempfile.TemporaryDirectory(dir=out.parent if out.parent.exists() else None) as tmp:
        src = Path(tmp) / "synthetic"
        generate(src, seed=seed, num_train=num_train, num_val=num_val, image_size=image_size,
                 max_objects=max_objects, min_size_frac=0.125, class_colour=True)
        work = Path(tmp) / "out"
        _coco(src, work)
        _voc(src, work)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(work), out)
    return out
