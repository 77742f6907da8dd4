"""Annotation validation before training/evaluation: each problem is one :class:`DataError` line.

Every message starts with the offending file or folder, then says what is wrong, e.g.
``/data/coco/annotations/instances_val2017.json: annotation id 17 refers to unknown image_id 999``.
Images are only checked for existence (``os.path.exists``) here, so validating COCO's 118k training images
takes about a second; the dataset check (``ld_core check-data``) also decodes every one
(:mod:`ld_core.data.images`) and reports the boxes mmdet leaves out of training (:func:`mmdet_leaves_out`).
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


LEFT_OUT = {"ignore": "marked 'ignore'", "zero-area": "of zero width, height or area",
            "outside": "outside the image", "under-1px": "narrower or lower than 1 pixel"}


def mmdet_leaves_out(ann: dict, width, height) -> Optional[str]:
    """Why mmdet's ``CocoDataset.parse_data_info`` leaves a COCO annotation out of training (a key of
    ``LEFT_OUT``), or None when it keeps it. The evaluation's ground truth leaves out the same ones
    (:func:`ld_core.data.ground_truth.consistent_ground_truth`), where pycocotools would count them."""
    if ann.get("ignore", False):
        return "ignore"
    x, y, w, h = ann["bbox"]
    if w <= 0 or h <= 0 or ann["area"] <= 0:
        return "zero-area"
    if max(0, min(x + w, width) - max(x, 0)) * max(0, min(y + h, height) - max(y, 0)) == 0:
        return "outside"
    if w < 1 or h < 1:
        return "under-1px"
    return None


def read_coco(ann_file) -> dict:
    """Check a COCO detection annotation file's structure; raises a one-line :class:`DataError` naming the
    file at the first problem found.

    Returns the counts (``images``, ``annotations``, ``categories``) and, for the dataset check: ``files``
    (``(file_name, width, height)`` of every image), ``left_out`` (``{reason: (count, example)}`` of the
    boxes training leaves out, :func:`mmdet_leaves_out`) and ``usable`` (the boxes training learns from and
    the evaluation scores against: kept, not ``iscrowd``).
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
        images[img["id"]] = img
    if not images:
        raise _fail(path, "'images' is empty")

    ann_ids, left_out, usable = set(), {}, 0
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
        img = images[ann["image_id"]]
        reason = mmdet_leaves_out(ann, img["width"], img["height"])
        if reason is not None:
            count, example = left_out.get(reason, (0, f"annotation id {aid}, image {img['file_name']}"))
            left_out[reason] = (count + 1, example)
        elif not ann.get("iscrowd", False):
            usable += 1
    return {"images": len(images), "annotations": len(ann_ids), "categories": len(categories),
            "files": [(img["file_name"], img["width"], img["height"]) for img in images.values()],
            "left_out": left_out, "usable": usable}


def no_usable_boxes(counts: dict, ignored: str) -> str:
    """The problem of a split none of whose boxes training learns from or the evaluation scores against
    (``ignored``: what mmdet ignores in it, e.g. "crowd regions")."""
    listed = counts["annotations"]
    why = ("lists no annotations" if not listed else
           f"has no box that training learns from or the evaluation scores against ({listed} listed, all of "
           f"them {ignored} or boxes mmdet leaves out)")
    return f"{why}: a training split without boxes teaches nothing, a validation split without them gives no AP"


def validate_coco(ann_file, img_dir=None, *, check_images=True) -> dict:
    """Check a COCO detection annotation file (:func:`read_coco`, with at least one usable box) and, with
    ``img_dir``, that its images exist.

    Returns ``{"images": n, "annotations": n, "categories": n}``; raises a one-line
    :class:`DataError` naming the file at the first problem found.
    """
    path = Path(ann_file)
    info = read_coco(path)
    if not info["usable"]:
        raise _fail(path, no_usable_boxes(info, "crowd regions"))
    if img_dir is not None:
        folder = Path(img_dir)
        if not folder.is_dir():
            raise _fail(folder, "dataset folder does not exist")
        if check_images:
            base = os.fspath(folder)
            for file_name, _, _ in info["files"]:
                image_path = os.path.join(base, file_name)
                if not os.path.exists(image_path):
                    raise _fail(image_path, f"image file listed in {path} is missing")
    return {key: info[key] for key in ("images", "annotations", "categories")}


def _text(node, tag: str) -> Optional[str]:
    child = node.find(tag)
    return None if child is None or child.text is None else child.text.strip()


def _number(text: Optional[str]) -> Optional[float]:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _voc_box_size(coords) -> tuple:
    """Width and height of a VOC box as mmdet's ``XMLDataset`` parses it (``int(float(v)) - 1`` each)."""
    xmin, ymin, xmax, ymax = (int(c) for c in coords)
    return xmax - xmin, ymax - ymin


def read_voc(devkit_root, year="VOC2007", split="trainval", classes: Optional[Iterable[str]] = None,
             *, check_images=True) -> dict:
    """Check a VOC devkit split: split file, one parsable XML per listed image, names and boxes.

    ``classes`` (optional) restricts object names. With ``check_images`` every ``JPEGImages/<stem>.jpg``
    must exist. Returns the counts (``images``, ``annotations``: objects, ``categories``: distinct names) and,
    for the dataset check: ``files`` (``(stem, width, height)`` of every image), ``left_out`` (``{reason:
    (count, example)}`` of the boxes mmdet's training ignores for being under 1 pixel: ``bbox_min_size``) and
    ``usable`` (objects neither difficult nor left out).
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

    names, n_objects, files, left_out, usable = set(), 0, [], {}, 0
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
        files.append((stem, width, height))
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
            if min(_voc_box_size(coords)) < 1:
                count, example = left_out.get("zero-area", (0, f"object {index} ('{name}') of {xml_path}"))
                left_out["zero-area"] = (count + 1, example)
            elif _number(_text(obj, "difficult")) in (None, 0):
                usable += 1
        if check_images:
            filename = _text(ann, "filename") or f"{stem}.jpg"
            image_path = root / "JPEGImages" / filename
            if not os.path.exists(image_path):
                raise _fail(image_path, f"image file listed in {xml_path} is missing")
    return {"images": len(stems), "annotations": n_objects, "categories": len(names), "files": files,
            "left_out": left_out, "usable": usable}


def validate_voc(devkit_root, year="VOC2007", split="trainval", classes: Optional[Iterable[str]] = None,
                 *, check_images=True) -> dict:
    """Check a VOC devkit split (:func:`read_voc`, with at least one usable object).

    Returns ``{"images": n, "annotations": n_objects, "categories": n_distinct_names}``; raises a one-line
    :class:`DataError` naming the file at the first problem found.
    """
    info = read_voc(devkit_root, year, split, classes, check_images=check_images)
    if not info["usable"]:
        split_file = Path(devkit_root) / year / "ImageSets" / "Main" / f"{split}.txt"
        raise _fail(split_file, no_usable_boxes(info, "difficult objects"))
    return {key: info[key] for key in ("images", "annotations", "categories")}
