"""A deterministic synthetic detection dataset where *localization quality* decides AP.

Localization Distillation transfers a teacher's per-edge box distributions (the GFocal "general
distribution" over each of the four edge offsets) to a student. That only helps if those distributions
carry information the hard box labels do not: how *certain* each edge is. This generator makes a small
dataset (128-px images by default, trainable on a CPU) with exactly that property; every choice below
is deliberate:

* **Four shape classes**: ``ellipse``, ``rectangle``, ``triangle`` and ``stick`` (a thin bar, aspect
  4:1..8:1, horizontal or vertical), each with a mild linear shading. By default every object's colour comes
  from one shared distribution (the class is in the shape only). With ``class_colour=True`` (the embedded
  default) each class also draws its hue from its own band of 1/8 of the colour wheel: a small network
  trained from scratch for minutes then tells the classes apart easily, and AP is decided by *where* the
  (blurred, faded, occluded) edges are, which is what LD transfers. Measured: R-18 baseline AP 2.4 with
  shape-only classes vs 13.9 with class colours (configs/scales/embedded.yaml).
* **Ambiguous boundaries.** Each object is rendered as a soft mask ``sigmoid(-1.702 * d / sigma)``
  of its signed distance ``d`` to the outline (a Gaussian-like edge blur) with ``sigma`` drawn
  uniformly in 0..3 px at 128 px (scaled with the image size; a 0.4-px floor anti-aliases), and 30% of
  the objects also fade out towards one random side (down to 10..35% opacity), so where an edge lies
  is genuinely uncertain and differs edge by edge. The ground-truth box is the shape's *geometric*
  extent, i.e. the 0.5 level of the unblurred mask (``d = 0``), clipped to the image. Triangles touch
  one box side only at their apex, another source of single-edge ambiguity.
* **A wide range of scales.** The longer side is log-uniform from ``min_size_frac * image_size``
  (default 1/16: 8 px at 128; the embedded default uses 1/8)
  to 70% of the image side; ellipses and rectangles have aspect ratios log-uniform in 1:3..3:1,
  triangles in 1:2..2:1. An object may extend past the image border by up to 30% of its size
  (VOC ``truncated`` is 1 for those).
* **Occlusion with amodal boxes.** 1..``max_objects`` objects per image are drawn in order, so a later
  object may cover an earlier one. An object is dropped from the annotations (but stays in the
  picture) when less than 40% of its in-image mask remains visible; kept objects keep their full
  geometric extent (an *amodal* box), so occluded edges must be inferred, not seen. The last object is
  never occluded, so every image has at least one annotation.
* **Background.** Smooth low-frequency colour noise (two octaves) around a random base colour, 2..5
  small unannotated clutter blobs (radius 1..3 px, below the smallest object), and mild per-pixel
  Gaussian noise (sigma 0.015). Object colours keep a minimum contrast to the base colour.
* **Determinism.** Image ``i`` of split ``s`` (0 = train, 1 = val) draws only from
  ``np.random.default_rng([seed, s, i])``: train and val are disjoint random streams, any image can be
  regenerated on its own, and the same arguments give byte-identical annotation files (boxes and
  occlusion decisions come from the random draws and the geometry, never from blended pixel values)
  and, on the same machine and numpy/Pillow builds, byte-identical images. Images are JPEG quality
  95 with 4:4:4 chroma.

Layout (``out_dir``)::

    dataset.json                                 parameters, classes, counts; written LAST
    coco/images/{train,val}/000001.jpg ...
    coco/annotations/instances_{train,val}.json  COCO; file_name is relative to coco/images/
    VOCdevkit/VOC2007/JPEGImages/{train,val}_000001.jpg ...
    VOCdevkit/VOC2007/Annotations/{train,val}_000001.xml
    VOCdevkit/VOC2007/ImageSets/Main/trainval.txt (train stems), test.txt (val stems)

Box conventions: COCO ``bbox = [x, y, w, h]`` in continuous pixel-edge coordinates (0 is the left
edge of the image, ``x + w <= width``), rounded to 0.01 px; ``area = w * h``; ``iscrowd = 0``.
VOC ``bndbox`` holds 1-based inclusive pixel indices derived from the rounded COCO box:
``xmin = floor(x + 0.5) + 1``, ``xmax = floor(x + w + 0.5)`` (same for y): the box's edges rounded to
the nearest pixel boundary. (mmdet's VOC loader subtracts 1 from all four.)

The tree is generated in a temporary sibling folder and renamed into place only when complete, so an
interrupted run never leaves a folder that looks finished; an existing ``out_dir`` is replaced.
"""
from __future__ import annotations

import io
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError

CLASSES = ("ellipse", "rectangle", "triangle", "stick")
VERSION = 1
SPLITS = (("train", 0, "trainval"), ("val", 1, "test"))  # (name, stream index, VOC split file)
_ALLOWED_TOP = {"dataset.json", "coco", "VOCdevkit"}

# knobs of the design (documented in the module docstring)
MAX_SIZE_FRAC = 0.7
MAX_BLUR_AT_128 = 3.0
MIN_SIGMA = 0.4
FADE_PROB = 0.3
MIN_VISIBLE = 0.4
MAX_OUTSIDE = 0.3
PIXEL_NOISE = 0.015
MIN_CONTRAST = 0.3
JPEG_KW = dict(format="JPEG", quality=95, subsampling=0, optimize=False)


# ----------------------------------------------------------------------------- rendering
def _lowfreq(rng: np.random.Generator, size: int, cells: int, amp: float) -> np.ndarray:
    """Smooth colour noise: a ``cells x cells`` random grid, bilinearly upsampled to ``size``."""
    grid = rng.normal(0.0, amp, (cells, cells, 3))
    pos = (np.arange(size) + 0.5) / size * (cells - 1)
    lo = np.minimum(np.floor(pos).astype(int), cells - 2)
    frac = pos - lo
    m = np.zeros((size, cells))
    m[np.arange(size), lo] = 1.0 - frac
    m[np.arange(size), lo + 1] += frac
    rows = np.tensordot(m, grid, axes=(1, 0))  # (size, cells, 3)
    return np.tensordot(rows, m, axes=(1, 1)).transpose(0, 2, 1)  # (size, size, 3)


def _window(x1: float, y1: float, x2: float, y2: float, margin: float, size: int):
    """Row/column slices of the pixels whose centres lie within ``margin`` of the box."""
    c0 = max(0, int(math.floor(x1 - margin)))
    c1 = min(size, int(math.ceil(x2 + margin)) + 1)
    r0 = max(0, int(math.floor(y1 - margin)))
    r1 = min(size, int(math.ceil(y2 + margin)) + 1)
    return slice(r0, r1), slice(c0, c1)


def _triangle_vertices(x1, y1, x2, y2, direction: int, t: float):
    """Apex on one box side (at fraction ``t`` along it), base along the opposite side."""
    w, h = x2 - x1, y2 - y1
    if direction == 0:  # apex up
        return [(x1 + t * w, y1), (x1, y2), (x2, y2)]
    if direction == 1:  # apex down
        return [(x1 + t * w, y2), (x1, y1), (x2, y1)]
    if direction == 2:  # apex left
        return [(x1, y1 + t * h), (x2, y1), (x2, y2)]
    return [(x2, y1 + t * h), (x1, y1), (x1, y2)]  # apex right


def _signed_distance(cls: int, xx, yy, box, tri) -> np.ndarray:
    """Signed distance (px, negative inside) to the outline; exact on the outline itself."""
    x1, y1, x2, y2 = box
    cx, cy, a, b = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2, (y2 - y1) / 2
    if cls == 0:  # ellipse: first-order distance f / |grad f|
        u, v = (xx - cx) / a, (yy - cy) / b
        f = u * u + v * v - 1.0
        grad = 2.0 * np.sqrt((u / a) ** 2 + (v / b) ** 2)
        return f / np.maximum(grad, 1e-6)
    if cls == 2:  # triangle: max over the three edge half-planes
        verts = np.asarray(tri, dtype=np.float64)
        centre = verts.mean(axis=0)
        d = None
        for k in range(3):
            p, q = verts[k], verts[(k + 1) % 3]
            n = np.array([q[1] - p[1], p[0] - q[0]])
            n /= np.linalg.norm(n)
            if n @ (centre - p) > 0:
                n = -n
            dk = n[0] * (xx - p[0]) + n[1] * (yy - p[1])
            d = dk if d is None else np.maximum(d, dk)
        return d
    return np.maximum(np.abs(xx - cx) - a, np.abs(yy - cy) - b)  # rectangle, stick


def _class_colour(rng: np.random.Generator, cls: int) -> np.ndarray:
    """A colour whose hue band (width 1/8 of the wheel, centred on ``cls / 4``) names the class."""
    import colorsys

    hue = (cls / len(CLASSES) + rng.uniform(-1.0, 1.0) / (4 * len(CLASSES))) % 1.0
    return np.array(colorsys.hsv_to_rgb(hue, rng.uniform(0.55, 0.95), rng.uniform(0.45, 0.95)))


def _object_params(rng: np.random.Generator, size: int, bg_colour: np.ndarray, min_size_frac: float = 1 / 16,
                   class_colour: bool = False) -> dict:
    """Draw one object's parameters (a fixed number of draws per object, whatever its class)."""
    u = rng.random(13)
    cls = int(u[0] * len(CLASSES))
    lo, hi = max(4.0, size * min_size_frac), MAX_SIZE_FRAC * size
    long_side = math.exp(math.log(lo) + u[1] * (math.log(hi) - math.log(lo)))
    if cls == 3:  # stick: aspect 4..8, horizontal or vertical
        aspect = 4.0 + 4.0 * u[2]
        short = max(long_side / aspect, 2.0)
        w, h = (long_side, short) if u[3] < 0.5 else (short, long_side)
    else:
        r = 3.0 if cls != 2 else 2.0  # ratio range 1:r .. r:1
        ratio = math.exp((2.0 * u[2] - 1.0) * math.log(r))
        w, h = (long_side, long_side / ratio) if ratio >= 1 else (long_side * ratio, long_side)
        w, h = max(w, 2.0), max(h, 2.0)
    # centre: the shape may extend past the border by at most MAX_OUTSIDE of its size
    cx = (0.5 - MAX_OUTSIDE) * w + u[4] * (size - (1.0 - 2 * MAX_OUTSIDE) * w)
    cy = (0.5 - MAX_OUTSIDE) * h + u[5] * (size - (1.0 - 2 * MAX_OUTSIDE) * h)
    box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
    sigma = math.hypot(u[6] * MAX_BLUR_AT_128 * size / 128.0, MIN_SIGMA)
    fade = None
    if u[7] < FADE_PROB:
        fade = (int(u[8] * 4), 0.3 + 0.4 * u[9], 0.10 + 0.25 * u[10])  # side, length frac, floor opacity
    tri = _triangle_vertices(*box, int(u[11] * 4), float(u[12])) if cls == 2 else None
    for _ in range(20):  # colour (shared or per-class distribution) with some contrast to the background
        colour = _class_colour(rng, cls) if class_colour else rng.uniform(0.05, 0.95, 3)
        if np.linalg.norm(colour - bg_colour) >= MIN_CONTRAST:
            break
    shading = rng.uniform(-0.25, 0.25, 2)
    return dict(cls=cls, box=box, sigma=sigma, fade=fade, tri=tri, colour=colour, shading=shading)


def _render_image(rng: np.random.Generator, size: int, max_objects: int, min_size_frac: float = 1 / 16,
                  class_colour: bool = False):
    """One image (uint8 HxWx3) and its kept objects: list of (class index, clipped box, truncated)."""
    centres = np.arange(size, dtype=np.float64) + 0.5
    bg_colour = rng.uniform(0.15, 0.85, 3)
    img = bg_colour + _lowfreq(rng, size, 4, rng.uniform(0.04, 0.12)) + _lowfreq(rng, size, 9, 0.03)

    for _ in range(int(rng.integers(2, 6))):  # unannotated clutter blobs, smaller than any object
        bx, by = rng.uniform(0, size, 2)
        radius = rng.uniform(1.0, 3.0)
        colour = rng.uniform(0.05, 0.95, 3)
        opacity = rng.uniform(0.4, 0.9)
        rs, cs = _window(bx, by, bx, by, 3 * radius, size)
        d2 = (centres[cs][None, :] - bx) ** 2 + (centres[rs][:, None] - by) ** 2
        alpha = (opacity * np.exp(-d2 / (2 * radius * radius)))[..., None]
        img[rs, cs] = img[rs, cs] * (1 - alpha) + colour * alpha

    n = int(rng.integers(1, max_objects + 1))
    objects = [_object_params(rng, size, bg_colour, min_size_frac, class_colour) for _ in range(n)]
    masks = []
    for obj in objects:
        x1, y1, x2, y2 = obj["box"]
        sigma = obj["sigma"]
        rs, cs = _window(x1, y1, x2, y2, 4 * sigma + 1, size)
        xx, yy = centres[cs][None, :], centres[rs][:, None]
        d = _signed_distance(obj["cls"], xx, yy, obj["box"], obj["tri"])
        alpha = 1.0 / (1.0 + np.exp(np.clip(1.702 * d / sigma, -50, 50)))
        if obj["fade"] is not None:
            side, frac, floor = obj["fade"]
            if side == 0:  # fade towards the left edge
                ramp = (xx - x1) / (frac * (x2 - x1))
            elif side == 1:  # right
                ramp = (x2 - xx) / (frac * (x2 - x1))
            elif side == 2:  # top
                ramp = (yy - y1) / (frac * (y2 - y1))
            else:  # bottom
                ramp = (y2 - yy) / (frac * (y2 - y1))
            alpha = alpha * (floor + (1 - floor) * np.clip(ramp, 0.0, 1.0))
        sx, sy = obj["shading"]
        shade = 1.0 + sx * (xx - (x1 + x2) / 2) / (x2 - x1) + sy * (yy - (y1 + y2) / 2) / (y2 - y1)
        colour = np.clip(obj["colour"] * shade[..., None], 0.0, 1.0)
        alpha = alpha[..., None]
        img[rs, cs] = img[rs, cs] * (1 - alpha) + colour * alpha
        masks.append((rs, cs, d <= 0))

    # occlusion: walk from the top-most object down, tracking what later objects cover
    covered = np.zeros((size, size), dtype=bool)
    kept = []
    for obj, (rs, cs, hard) in zip(reversed(objects), reversed(masks)):
        own = int(hard.sum())
        visible = int((hard & ~covered[rs, cs]).sum())
        covered[rs, cs] |= hard
        if own == 0 or visible < MIN_VISIBLE * own:
            continue
        x1, y1, x2, y2 = obj["box"]
        truncated = x1 < 0 or y1 < 0 or x2 > size or y2 > size
        clipped = (max(x1, 0.0), max(y1, 0.0), min(x2, float(size)), min(y2, float(size)))
        kept.append((obj["cls"], clipped, truncated))
    kept.reverse()  # drawing order
    img = img + rng.normal(0.0, PIXEL_NOISE, img.shape)
    return np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8), kept, n - len(kept)


# ----------------------------------------------------------------------------- annotations
def coco_bbox(box) -> list:
    """``[x, y, w, h]`` (0.01-px rounding) of a clipped ``(x1, y1, x2, y2)`` box."""
    x1, y1, x2, y2 = (round(float(v), 2) for v in box)
    return [x1, y1, round(x2 - x1, 2), round(y2 - y1, 2)]


def voc_bndbox(bbox) -> tuple:
    """VOC 1-based inclusive ``(xmin, ymin, xmax, ymax)`` of a COCO ``[x, y, w, h]`` box."""
    x, y, w, h = bbox
    return (math.floor(x + 0.5) + 1, math.floor(y + 0.5) + 1,
            math.floor(x + w + 0.5), math.floor(y + h + 0.5))


def _voc_xml(filename: str, size: int, objects) -> str:
    lines = ["<annotation>", "\t<folder>VOC2007</folder>", f"\t<filename>{filename}</filename>",
             "\t<source>", "\t\t<database>ld_core synthetic</database>", "\t</source>",
             "\t<size>", f"\t\t<width>{size}</width>", f"\t\t<height>{size}</height>", "\t\t<depth>3</depth>",
             "\t</size>", "\t<segmented>0</segmented>"]
    for name, bbox, truncated in objects:
        xmin, ymin, xmax, ymax = voc_bndbox(bbox)
        lines += ["\t<object>", f"\t\t<name>{name}</name>", "\t\t<pose>Unspecified</pose>",
                  f"\t\t<truncated>{int(truncated)}</truncated>", "\t\t<difficult>0</difficult>", "\t\t<bndbox>",
                  f"\t\t\t<xmin>{xmin}</xmin>", f"\t\t\t<ymin>{ymin}</ymin>",
                  f"\t\t\t<xmax>{xmax}</xmax>", f"\t\t\t<ymax>{ymax}</ymax>", "\t\t</bndbox>", "\t</object>"]
    lines.append("</annotation>")
    return "\n".join(lines) + "\n"


def _write(path: Path, data: bytes | str) -> None:
    """Every file of the tree goes through here (inside the temporary folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(path, "wb") as handle:
        handle.write(data)


def _json_text(data) -> str:
    return json.dumps(data, separators=(",", ":")) + "\n"


# ----------------------------------------------------------------------------- generation
def _check_params(num_train, num_val, image_size, max_objects, min_size_frac=1 / 16) -> None:
    if not isinstance(min_size_frac, (int, float)) or not 0.0 < min_size_frac < MAX_SIZE_FRAC:
        raise ConfigError(f"synthetic dataset: min_size_frac must be in (0, {MAX_SIZE_FRAC}), got {min_size_frac!r}")
    for name, value, low in (("num_train", num_train, 1), ("num_val", num_val, 1),
                             ("image_size", image_size, 32), ("max_objects", max_objects, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"synthetic dataset: {name} must be an integer >= {low}, got {value!r}")


def _check_replaceable(out: Path) -> None:
    """Refuse to delete a folder that is not (an empty or earlier copy of) a synthetic dataset."""
    if not out.exists() and not out.is_symlink():
        return
    if not out.is_dir() or out.is_symlink():
        raise DataError(f"{out}: exists and is not a folder; refusing to replace it with the synthetic dataset")
    foreign = sorted(p.name for p in out.iterdir() if p.name not in _ALLOWED_TOP)
    if foreign:
        raise DataError(f"{out}: exists and does not look like a synthetic dataset (found '{foreign[0]}'); "
                        "refusing to replace it")


def generate(out_dir, *, seed=0, num_train=400, num_val=100, image_size=128, max_objects=6,
             min_size_frac=1 / 16, class_colour=False) -> dict:
    """Generate the dataset under ``out_dir`` (replacing it) and return the ``dataset.json`` content.

    ``min_size_frac``: smallest object's longer side as a fraction of the image side; ``class_colour``:
    each class draws its colour from its own hue band (classification gets easy, localization decides AP).
    """
    _check_params(num_train, num_val, image_size, max_objects, min_size_frac)
    seed = int(seed)
    out = Path(out_dir).absolute()
    _check_replaceable(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the published folder should not be
        info = _generate_into(tmp, seed=seed, num_train=num_train, num_val=num_val, image_size=image_size,
                              max_objects=max_objects, min_size_frac=float(min_size_frac),
                              class_colour=bool(class_colour))
        _publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return info


def _publish(tmp: Path, out: Path) -> None:
    """Swap the finished temporary tree into place (the old tree, if any, is removed afterwards)."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
        os.replace(out, old / "tree")
    try:
        os.replace(tmp, out)
    except BaseException:
        if old is not None:  # put the previous tree back
            os.replace(old / "tree", out)
            old.rmdir()
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _generate_into(root: Path, *, seed, num_train, num_val, image_size, max_objects, min_size_frac,
                   class_colour) -> dict:
    from PIL import Image

    counts = {"train": num_train, "val": num_val}
    voc = root / "VOCdevkit" / "VOC2007"
    categories = [{"id": i + 1, "name": name, "supercategory": "shape"} for i, name in enumerate(CLASSES)]
    summary = {}
    for split, stream, voc_split in SPLITS:
        images, annotations, stems = [], [], []
        per_class = dict.fromkeys(CLASSES, 0)
        dropped = 0
        for index in range(1, counts[split] + 1):
            rng = np.random.default_rng([seed, stream, index])
            pixels, kept, n_dropped = _render_image(rng, image_size, max_objects, min_size_frac, class_colour)
            dropped += n_dropped
            buffer = io.BytesIO()
            Image.fromarray(pixels, mode="RGB").save(buffer, **JPEG_KW)
            jpeg = buffer.getvalue()
            stem = f"{split}_{index:06d}"
            file_name = f"{split}/{index:06d}.jpg"
            _write(root / "coco" / "images" / file_name, jpeg)
            _write(voc / "JPEGImages" / f"{stem}.jpg", jpeg)
            images.append({"id": index, "file_name": file_name, "width": image_size, "height": image_size})
            voc_objects = []
            for cls, box, truncated in kept:
                bbox = coco_bbox(box)
                annotations.append({"id": len(annotations) + 1, "image_id": index, "category_id": cls + 1,
                                    "bbox": bbox, "area": round(bbox[2] * bbox[3], 2), "iscrowd": 0})
                voc_objects.append((CLASSES[cls], bbox, truncated))
                per_class[CLASSES[cls]] += 1
            _write(voc / "Annotations" / f"{stem}.xml", _voc_xml(f"{stem}.jpg", image_size, voc_objects))
            stems.append(stem)
        coco = {"info": {"description": f"ld_core synthetic shapes v{VERSION}, seed {seed}, split {split}"},
                "images": images, "annotations": annotations, "categories": categories}
        _write(root / "coco" / "annotations" / f"instances_{split}.json", _json_text(coco))
        _write(voc / "ImageSets" / "Main" / f"{voc_split}.txt", "".join(s + "\n" for s in stems))
        summary[split] = {"images": len(images), "annotations": len(annotations), "dropped_occluded": dropped,
                          "per_class": per_class, "coco": f"coco/annotations/instances_{split}.json",
                          "coco_images": "coco/images/", "voc_split": voc_split}
    info = {"name": "ld_core synthetic shapes", "version": VERSION,
            "params": {"seed": seed, "num_train": num_train, "num_val": num_val, "image_size": image_size,
                       "max_objects": max_objects, "min_size_frac": min_size_frac,
                       "class_colour": class_colour},
            "classes": list(CLASSES), "splits": summary,
            "voc_root": "VOCdevkit", "voc_year": "VOC2007"}
    _write(root / "dataset.json", json.dumps(info, indent=2) + "\n")  # completion marker: last
    return info
