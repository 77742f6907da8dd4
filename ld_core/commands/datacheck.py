"""`ld_core check-data`: check the datasets (paper-scale or your own) once, before anything is trained or submitted.

- COCO 2017 (``--coco ROOT``): ``annotations/instances_{train,val}2017.json`` parse and are valid COCO
  (:func:`ld_core.data.annotations.read_coco`), ``train2017/`` and ``val2017/`` exist and hold every image
  the annotations list, and they list 118,287 / 5,000 images.
- VOC 07+12 (``--voc VOCDEVKIT``): ``VOC2007/`` and ``VOC2012/`` with ``ImageSets/Main/trainval.txt`` (both)
  and ``test.txt`` (VOC2007), ``Annotations/<id>.xml`` and ``JPEGImages/<id>.jpg`` for every listed id, valid
  XML with VOC class names (:func:`ld_core.data.annotations.read_voc`), 16,551 trainval (07+12) and
  4,952 test images.
- A dataset of the user's own (``--dataset FILE`` COCO format, ``--voc-dataset FILE`` VOC format; the file's
  schema is ``workflow/schemas/dataset.schema.yaml``): the same checks on its splits, train and val categories
  identical (COCO) or every object name in its class list (VOC), the image counts its ``expect:`` states.

Then every image is opened as training loads it (:mod:`ld_core.data.images`, ``--threads`` processes,
progress lines for large sets): an empty, truncated or undecodable file, or one whose decoded size is not
the width/height its annotation (COCO JSON, VOC XML) states, is a problem. A split without a box that
training learns from (none, or only crowd / difficult / left-out ones) is a problem. Boxes mmdet's training
leaves out (zero width, height or area, under 1 pixel, outside the image: COCO itself has a few) are not:
each split that has some gets one ``warning:`` line (count per reason, an example) and ``left_out`` in the
summary; the evaluation leaves them out of its ground truth too (:mod:`ld_core.data.ground_truth`).

Unlike the checks at the start of every training (first problem only), this one lists *every* problem, one
line each (``error: <file or folder>: <problem>``), then exits with status 2. Missing files are named up to
``MAX_LISTED`` per folder and counted beyond; every broken image is named. Expected counts are overridable
(``--expect-*``, ``--no-counts``). On success a JSON summary is written atomically to ``--out`` (the
Snakemake rule's output).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Iterable, Optional

from ..config.dataset_file import load_user_dataset
from ..data.images import ImageItem, open_images
from ..data.annotations import LEFT_OUT, no_usable_boxes, read_coco, read_voc
from ..errors import DataError, one_line
from ..files import atomic_write_json

COCO_TRAIN, COCO_VAL = 118_287, 5_000
VOC_TRAINVAL, VOC_TEST = 16_551, 4_952  # VOC2007 + VOC2012 trainval; VOC2007 test
VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor")
VOC_SPLITS = (("VOC2007", "trainval"), ("VOC2012", "trainval"), ("VOC2007", "test"))
MAX_LISTED = 5
PROGRESS_EVERY, PROGRESS_SECONDS = 1000, 10.0  # progress lines while the images are opened


def missing_files(folder: Path, names: Iterable[str], what: str, source) -> list:
    """Problems for the ``names`` absent from ``folder`` (first ``MAX_LISTED`` by name, then a count)."""
    folder = Path(folder)
    if not folder.is_dir():
        return [f"{folder}: folder does not exist (it should hold the {what}s listed in {source})"]
    base = os.fspath(folder)
    missing = [name for name in names if not os.path.exists(os.path.join(base, name))]
    problems = [f"{os.path.join(base, name)}: {what} listed in {source} is missing" for name in missing[:MAX_LISTED]]
    if len(missing) > MAX_LISTED:
        problems.append(f"{folder}: {len(missing) - MAX_LISTED} more {what}s listed in {source} are missing "
                        f"({len(missing)} in all)")
    return problems


def _count_problem(where, what: str, found: int, expected: Optional[int]) -> list:
    if expected is None or found == expected:
        return []
    return [f"{where}: {found} {what}, expected {expected:,} (a partial or different copy? "
            "override the expected count with --expect-... / data_check_counts)"]


class Findings:
    """What the checks of every dataset found: problems (one line each), notes (warnings) and the images to
    open (all datasets' together, in one pool, after the annotation checks)."""

    def __init__(self):
        self.problems, self.notes, self.images = [], [], []


def _stats(info: dict) -> dict:
    """The summary of one split: its counts and the boxes training leaves out, by reason."""
    return dict({k: info[k] for k in ("images", "annotations", "categories")},
                left_out={reason: count for reason, (count, _) in sorted(info["left_out"].items())})


def left_out_note(source, info: dict) -> list:
    """The warning line of a split some of whose boxes training leaves out (none when it keeps them all)."""
    if not info["left_out"]:
        return []
    total = sum(count for count, _ in info["left_out"].values())
    parts = "; ".join(f"{count} {LEFT_OUT[reason]} (e.g. {example})"
                      for reason, (count, example) in sorted(info["left_out"].items()))
    return [f"{source}: {total} of {info['annotations']} boxes are left out of training (mmdet) and of the "
            f"evaluation's ground truth: {parts}"]


def _check_coco_split(ann: Path, img_dir: Path, what: str, expected: Optional[int], found: Findings):
    """The summary (None when the file is unusable) of one COCO annotation file and its image folder."""
    if not img_dir.is_dir():
        found.problems.append(f"{img_dir}: image folder does not exist")
    try:
        info = read_coco(ann)
    except DataError as exc:
        found.problems.append(str(exc))
        return None
    if img_dir.is_dir():
        found.problems += missing_files(img_dir, [name for name, _, _ in info["files"]], "image file", ann)
        base = os.fspath(img_dir)
        found.images += [ImageItem(os.path.join(base, name), w, h, str(ann)) for name, w, h in info["files"]]
    if not info["usable"]:
        found.problems.append(f"{ann}: {no_usable_boxes(info, 'crowd regions')}")
    found.notes += left_out_note(ann, info)
    found.problems += _count_problem(ann, f"images ({what})", info["images"], expected)
    return _stats(info)


def check_coco(root, expect_train: Optional[int], expect_val: Optional[int], found: Findings) -> dict:
    """The summary of a COCO 2017 folder; what is wrong goes to ``found``."""
    root = Path(root)
    if not root.is_dir():
        found.problems.append(f"{root}: COCO folder does not exist")
        return {}
    summary = {}
    for split, expected in (("train2017", expect_train), ("val2017", expect_val)):
        stats = _check_coco_split(root / "annotations" / f"instances_{split}.json", root / split, split, expected,
                                  found)
        if stats is not None:
            summary[split] = stats
    return summary


def check_user_coco(file, found: Findings) -> dict:
    """The summary of a COCO-format dataset of the user's (a dataset file): both splits; loading the file
    already checked that both list the same categories (its ``classes``)."""
    spec = load_user_dataset(file, "coco")
    summary = {}
    for split, (ann, img) in (("train", spec.train), ("val", spec.test)):
        stats = _check_coco_split(Path(ann), Path(img), split, spec.expect.get(split), found)
        if stats is not None:
            summary[split] = stats
    summary["classes"] = list(spec.classes)
    return summary


def _split_ids(split_file: Path):
    try:
        return [line.split()[0] for line in split_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{split_file}: cannot be read ({one_line(exc)})") from None


def _check_voc_split(devkit: Path, folder: str, split: str, classes, found: Findings):
    """(image count or None, summary or None) of one VOC-layout split."""
    root = devkit / folder
    split_file = root / "ImageSets" / "Main" / f"{split}.txt"
    if not split_file.is_file():
        found.problems.append(f"{split_file}: split file does not exist")
        return None, None
    try:
        ids = _split_ids(split_file)
    except DataError as exc:
        found.problems.append(str(exc))
        return None, None
    if not ids:
        found.problems.append(f"{split_file}: split file lists no images")
        return None, None
    missing_xml = missing_files(root / "Annotations", [f"{i}.xml" for i in ids], "annotation file", split_file)
    found.problems += missing_xml + missing_files(root / "JPEGImages", [f"{i}.jpg" for i in ids], "image file",
                                                  split_file)
    if missing_xml:
        return len(ids), None
    try:  # every annotation file is there: check their content (first bad XML)
        info = read_voc(devkit, folder, split, classes, check_images=False)
    except DataError as exc:
        found.problems.append(str(exc))
        return len(ids), None
    base = os.fspath(root / "JPEGImages")  # mmdet's VOCDataset loads JPEGImages/<id>.jpg
    found.images += [ImageItem(os.path.join(base, f"{stem}.jpg"), w, h, str(root / "Annotations" / f"{stem}.xml"))
                     for stem, w, h in info["files"]]
    if not info["usable"]:
        found.problems.append(f"{split_file}: {no_usable_boxes(info, 'difficult objects')}")
    found.notes += left_out_note(split_file, info)
    return len(ids), _stats(info)


def check_voc(devkit, expect_trainval: Optional[int], expect_test: Optional[int], found: Findings) -> dict:
    """The summary of a VOCdevkit folder (VOC2007 + VOC2012); what is wrong goes to ``found``."""
    devkit = Path(devkit)
    if not devkit.is_dir():
        found.problems.append(f"{devkit}: VOCdevkit folder does not exist")
        return {}
    if not (devkit / "VOC2007").is_dir() and (devkit / "VOCdevkit").is_dir():
        devkit = devkit / "VOCdevkit"  # the folder above VOCdevkit was given
    summary, counts = {}, {}
    for year in sorted({year for year, _ in VOC_SPLITS}):
        if not (devkit / year).is_dir():
            found.problems.append(f"{devkit / year}: dataset folder does not exist")
    for year, split in VOC_SPLITS:
        if not (devkit / year).is_dir():
            continue
        count, stats = _check_voc_split(devkit, year, split, VOC_CLASSES, found)
        if count is not None:
            counts[(year, split)] = count
        if stats is not None:
            summary[f"{year}/{split}"] = stats
    if ("VOC2007", "trainval") in counts and ("VOC2012", "trainval") in counts:
        n07, n12 = counts[("VOC2007", "trainval")], counts[("VOC2012", "trainval")]
        found.problems += _count_problem(devkit, f"trainval images in VOC 07+12 ({n07:,} + {n12:,})", n07 + n12,
                                         expect_trainval)
    if ("VOC2007", "test") in counts:
        found.problems += _count_problem(devkit / "VOC2007" / "ImageSets" / "Main" / "test.txt", "test images",
                                         counts[("VOC2007", "test")], expect_test)
    return summary


def check_user_voc(file, found: Findings) -> dict:
    """The summary of a VOC-format dataset of the user's (a dataset file, with its class list)."""
    spec = load_user_dataset(file, "voc")
    devkit = Path(spec.root)
    summary = {}
    for part, entries in (("train", spec.train), ("test", spec.test)):
        total = 0
        for folder, split in entries:
            count, stats = _check_voc_split(devkit, folder, split, spec.classes, found)
            total += count or 0
            if stats is not None:
                summary[f"{folder}/{split}"] = stats
        found.problems += _count_problem(spec.path, f"{part} images", total, spec.expect.get(part))
    return summary


def _count(text: str) -> Optional[int]:
    if text.lower() in ("none", "null", "any"):
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an image count or 'none', got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"an image count must be >= 1, got {value}")
    return value


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value
    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--coco", metavar="ROOT", help="COCO 2017 folder (annotations/, train2017/, val2017/)")
    parser.add_argument("--voc", metavar="VOCDEVKIT", help="VOCdevkit folder holding VOC2007/ and VOC2012/")
    parser.add_argument("--dataset", metavar="FILE", help="a COCO-format dataset file of your own (its counts: expect:)")
    parser.add_argument("--voc-dataset", metavar="FILE", help="a VOC-format dataset file of your own")
    count = dict(type=_count, metavar="N|none")
    parser.add_argument("--expect-coco-train", default=COCO_TRAIN, **count, help=f"default {COCO_TRAIN}")
    parser.add_argument("--expect-coco-val", default=COCO_VAL, **count, help=f"default {COCO_VAL}")
    parser.add_argument("--expect-voc-trainval", default=VOC_TRAINVAL, **count,
                        help=f"VOC2007 + VOC2012 trainval images (default {VOC_TRAINVAL})")
    parser.add_argument("--expect-voc-test", default=VOC_TEST, **count, help=f"VOC2007 test images (default {VOC_TEST})")
    parser.add_argument("--no-counts", action="store_true", help="do not check the image counts")
    parser.add_argument("--threads", type=_positive(int), default=1,
                        help="processes that open the images (the Snakemake rule: threads.check_data)")
    parser.add_argument("--progress-every", type=_positive(int), default=PROGRESS_EVERY, metavar="N",
                        help=f"a progress line every N images opened (default {PROGRESS_EVERY}) ...")
    parser.add_argument("--progress-seconds", type=_positive(float), default=PROGRESS_SECONDS, metavar="S",
                        help=f"... or every S seconds, whichever comes first (default {PROGRESS_SECONDS:g})")
    parser.add_argument("--out", help="JSON summary written (atomically) when every check passes")


def run(args: argparse.Namespace) -> int:
    if not (args.coco or args.voc or args.dataset or args.voc_dataset):
        raise DataError("check-data: nothing to check (give --coco, --voc, --dataset and/or --voc-dataset)")

    def expected(value):
        return None if args.no_counts else value

    found, summary = Findings(), {}
    if args.coco:
        summary["coco"] = check_coco(args.coco, expected(args.expect_coco_train), expected(args.expect_coco_val),
                                     found)
    if args.voc:
        summary["voc"] = check_voc(args.voc, expected(args.expect_voc_trainval), expected(args.expect_voc_test),
                                   found)
    for key, check in (("dataset", check_user_coco), ("voc_dataset", check_user_voc)):
        if getattr(args, key):
            summary[key] = check(getattr(args, key), found)
    images = list(dict.fromkeys(found.images))  # one image listed by two datasets is opened once
    problems = found.problems + open_images(images, args.threads, every=args.progress_every,
                                            seconds=args.progress_seconds)
    for note in found.notes:
        print(f"warning: {' '.join(note.split())}", file=sys.stderr)
    for problem in problems:
        print(f"error: {' '.join(problem.split())}", file=sys.stderr)
    if problems:
        print(f"error: {len(problems)} dataset problem(s) found; fix them before training", file=sys.stderr)
        return 2
    for name, parts in summary.items():
        print(f"[check-data] {name}: " + ", ".join(f"{k} {v['images']:,} images" for k, v in parts.items()
                                                   if isinstance(v, dict)) + ": ok")
    if args.out:
        atomic_write_json(args.out, {"datasets": {"coco": args.coco, "voc": args.voc, "dataset": args.dataset,
                                                  "voc_dataset": args.voc_dataset},
                                     "images_opened": len(images), "summary": summary})
    return 0
