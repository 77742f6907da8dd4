"""Annotation validation before training/evaluation: each problem is one :class:`DataError` line.

Every message starts with the offending file or folder, then says what is wrong, e.g.
``/data/coco/annotations/instances_val2017.json: annotation id 17 refers to unknown image_id 999``.
Images are only checked for existence (``os.path.exists``), never decoded, so validating COCO's
118k training images takes about a second.
"""
from __future__ import annotations

import json
import math
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Iterable, Optional

from ..errors import DataError


def _fail(path, message: str) -> DataError:
    """A one-line DataError ``<path>: <message>`` (newlines in either part are folded into spaces)."""
    text = f"{path}: {message}"
    return DataError(" ".join(text.split()) if ("\n" in text or "\r" in text) else text)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _load_json(path: Path):
    if not path.exists():
        raise _fail(path, "annotation file does not exist")
    if not path.is_file():
        raise _fail(path, "annotation path is not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(path, f"not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise _fail(path, f"cannot be read ({exc.strerror})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(path, f"malformed JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None


def validate_coco(ann_file, img_dir=None, *, check_images=True) -> dict:
    """Check a COCO detection annotation file (and, with ``img_dir``, that its images exist).

    Returns ``{"images": n, "annotations": n, "categories": n}``; raises a one-line
    :class:`DataError` naming the file at the first problem found.
    """
    path = Path(ann_file)
    data = _load_json(path)
    if not isinstance(data, dict):
        raise _fail(path, f"top level must be a JSON object, got {type(data).__name__}")
    for key in ("images", "annotations", "categories"):
        if key not in data:
            raise _fail(path, f"missing key '{key}'")
        if not isinstance(data[key], list):
            raise _fail(path, f"'{key}' must be a list, got {type(data[key]).__name__}")

    categories = set()
    for index, cat in enumerate(data["categories"]):
        if not isinstance(cat, dict) or not _is_int(cat.get("id")) or not isinstance(cat.get("name"), str):
            raise _fail(path, f"category entry {index} must be an object with an integer 'id' and a string 'name'")
        if cat["id"] in categories:
            raise _fail(path, f"duplicate category id {cat['id']}")
        categories.add(cat["id"])
    if not categories:
        raise _fail(path, "'categories' is empty")

    images = {}
    for index, img in enumerate(data["images"]):
        if not isinstance(img, dict):
            raise _fail(path, f"image entry {index} must be an object")
        for key in ("id", "file_name", "width", "height"):
            if key not in img:
                raise _fail(path, f"image entry {index} is missing key '{key}'")
        if not _is_int(img["id"]):
            raise _fail(path, f"image entry {index} has a non-integer id {img['id']!r}")
        if img["id"] in images:
            raise _fail(path, f"duplicate image id {img['id']}")
        if not isinstance(img["file_name"], str) or not img["file_name"]:
            raise _fail(path, f"image id {img['id']} has an empty or non-string file_name")
        if not (_is_int(img["width"]) and _is_int(img["height"]) and img["width"] > 0 and img["height"] > 0):
            raise _fail(path, f"image id {img['id']} must have positive integer width and height")
        images[img["id"]] = img["file_name"]
    if not images:
        raise _fail(path, "'images' is empty")

    ann_ids = set()
    for index, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict):
            raise _fail(path, f"annotation entry {index} must be an object")
        if not _is_int(ann.get("id")):
            raise _fail(path, f"annotation entry {index} has a missing or non-integer 'id'")
        aid = ann["id"]
        if aid in ann_ids:
            raise _fail(path, f"duplicate annotation id {aid}")
        ann_ids.add(aid)
        for key in ("image_id", "category_id", "bbox", "area"):
            if key not in ann:
                raise _fail(path, f"annotation id {aid} is missing key '{key}'")
        if not _is_int(ann["image_id"]) or ann["image_id"] not in images:
            raise _fail(path, f"annotation id {aid} refers to unknown image_id {ann['image_id']!r}")
        if not _is_int(ann["category_id"]) or ann["category_id"] not in categories:
            raise _fail(path, f"annotation id {aid} refers to unknown category_id {ann['category_id']!r}")
        bbox = ann["bbox"]
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)
                and bbox[2] >= 0 and bbox[3] >= 0):
            raise _fail(path, f"bbox of annotation {aid} must be 4 numbers with w,h >= 0, got {bbox!r}")
        if not _is_number(ann["area"]) or ann["area"] < 0:
            raise _fail(path, f"area of annotation {aid} must be a number >= 0, got {ann['area']!r}")

    if img_dir is not None:
        folder = Path(img_dir)
        if not folder.is_dir():
            raise _fail(folder, "dataset folder does not exist")
        if check_images:
            base = os.fspath(folder)
            for file_name in images.values():
                image_path = os.path.join(base, file_name)
                if not os.path.exists(image_path):
                    raise _fail(image_path, f"image file listed in {path} is missing")
    return {"images": len(images), "annotations": len(ann_ids), "categories": len(categories)}


def _text(node, tag: str) -> Optional[str]:
    child = node.find(tag)
    return None if child is None or child.text is None else child.text.strip()


def _number(text: Optional[str]) -> Optional[float]:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def validate_voc(devkit_root, year="VOC2007", split="trainval", classes: Optional[Iterable[str]] = None,
                 *, check_images=True) -> dict:
    """Check a VOC devkit split: split file, one parsable XML per listed image, names and boxes.

    ``classes`` (optional) restricts object names. With ``check_images`` every ``JPEGImages/<stem>.jpg``
    must exist. Returns ``{"images": n, "annotations": n_objects, "categories": n_distinct_names}``.
    """
    devkit = Path(devkit_root)
    if not devkit.is_dir():
        raise _fail(devkit, "dataset folder does not exist")
    root = devkit / year
    if not root.is_dir():
        raise _fail(root, "dataset folder does not exist")
    split_file = root / "ImageSets" / "Main" / f"{split}.txt"
    if not split_file.is_file():
        raise _fail(split_file, "split file does not exist")
    try:
        stems = [line.split()[0] for line in split_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise _fail(split_file, f"cannot be read ({exc})") from None
    if not stems:
        raise _fail(split_file, "split file lists no images")
    allowed = None if classes is None else set(classes)

    names, n_objects = set(), 0
    for stem in stems:
        xml_path = root / "Annotations" / f"{stem}.xml"
        if not xml_path.is_file():
            raise _fail(xml_path, f"annotation file listed in {split_file} is missing")
        try:
            tree = ET.parse(xml_path)
        except ET.ParseError as exc:
            raise _fail(xml_path, f"unparsable XML ({exc})") from None
        ann = tree.getroot()
        size = ann.find("size")
        width = _number(_text(size, "width")) if size is not None else None
        height = _number(_text(size, "height")) if size is not None else None
        if width is None or height is None or width <= 0 or height <= 0:
            raise _fail(xml_path, "missing or bad <size> (need positive width and height)")
        for index, obj in enumerate(ann.findall("object")):
            name = _text(obj, "name")
            if not name:
                raise _fail(xml_path, f"object {index} has no <name>")
            if allowed is not None and name not in allowed:
                raise _fail(xml_path, f"object name '{name}' is not one of the {len(allowed)} classes "
                                      f"({', '.join(sorted(allowed))})")
            box = obj.find("bndbox")
            coords = [_number(_text(box, k)) if box is not None else None for k in ("xmin", "ymin", "xmax", "ymax")]
            if (any(c is None for c in coords) or coords[0] > coords[2] or coords[1] > coords[3]
                    or min(coords) < 0 or coords[2] > width + 1 or coords[3] > height + 1):
                raise _fail(xml_path, f"object {index} ('{name}') has a bad bndbox: need numeric xmin <= xmax, "
                                      f"ymin <= ymax inside the {width:g}x{height:g} image, got {coords}")
            names.add(name)
            n_objects += 1
        if check_images:
            filename = _text(ann, "filename") or f"{stem}.jpg"
            image_path = root / "JPEGImages" / filename
            if not os.path.exists(image_path):
                raise _fail(image_path, f"image file listed in {xml_path} is missing")
    return {"images": len(stems), "annotations": n_objects, "categories": len(names)}


def coco_image_files(ann_file) -> list:
    """File names of every image a COCO annotation file lists (call it on a file that passed
    :func:`validate_coco`); used to list *all* missing images, where ``validate_coco`` stops at the first."""
    return [img["file_name"] for img in _load_json(Path(ann_file))["images"]]
