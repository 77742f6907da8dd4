"""`ld_core check-data` on small fake COCO/VOC trees and on the example dataset (`ld_core example-dataset`):
every image opened (broken, empty, undecodable, wrong size), boxes training leaves out reported, splits without
boxes refused (its Snakemake rule: tests/workflow/test_datacheck_rule.py)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import make_coco
from ld_core.cli import main
from ld_core.commands.datacheck import MAX_LISTED

SMALL = ["--expect-coco-train", "3", "--expect-coco-val", "2", "--expect-voc-trainval", "3", "--expect-voc-test", "2"]


def check(capsys, *args):
    code = main(["check-data", *args])
    out = capsys.readouterr()
    errors = [line for line in out.err.splitlines() if line.startswith("error: ")]
    return code, errors, out.out


def test_complete_trees_pass_with_their_expected_counts(datasets, tmp_path, capsys):
    coco, voc = datasets
    out = tmp_path / "checks" / "datasets.json"
    code, errors, stdout = check(capsys, "--coco", str(coco), "--voc", str(voc), *SMALL, "--out", str(out))
    assert code == 0 and errors == [], errors
    summary = json.loads(out.read_text())["summary"]
    assert summary["coco"]["train2017"]["images"] == 3 and summary["voc"]["VOC2012/trainval"]["images"] == 1
    assert "coco: train2017 3 images, val2017 2 images: ok" in stdout
    # the folder above VOCdevkit is accepted too
    assert check(capsys, "--voc", str(voc.parent), *SMALL)[0] == 0


def test_paper_counts_are_the_default(datasets, capsys):
    coco, voc = datasets
    code, errors, _ = check(capsys, "--coco", str(coco), "--voc", str(voc))
    assert code == 2
    text = "\n".join(errors)
    for expected in ("expected 118,287", "expected 5,000", "expected 16,551", "expected 4,952"):
        assert expected in text, text
    assert check(capsys, "--coco", str(coco), "--voc", str(voc), "--no-counts")[0] == 0
    assert check(capsys, "--coco", str(coco), "--expect-coco-train", "none", "--expect-coco-val", "2")[0] == 0


def test_every_problem_is_listed_one_line_each(datasets, capsys):
    coco, voc = datasets
    shutil.rmtree(coco / "val2017")                                          # 1: image folder missing
    (coco / "train2017" / "000000000002.jpg").unlink()                       # 2: one train image missing
    (voc / "VOC2007" / "Annotations" / "2007tr0001.xml").unlink()            # 3: annotation missing
    (voc / "VOC2007" / "ImageSets" / "Main" / "test.txt").unlink()           # 4: split file missing
    (voc / "VOC2012" / "Annotations" / "2012tr0000.xml").write_text("<annotation><size>")  # 5: bad XML
    code, errors, _ = check(capsys, "--coco", str(coco), "--voc", str(voc), *SMALL)
    assert code == 2
    problems, summary = errors[:-1], errors[-1]
    assert summary == f"error: {len(problems)} dataset problem(s) found; fix them before training"
    text = "\n".join(problems)
    assert f"{coco / 'val2017'}: image folder does not exist" in text
    assert f"{coco / 'train2017' / '000000000002.jpg'}: image file listed in" in text
    assert "2007tr0001.xml: annotation file listed in" in text
    assert f"{voc / 'VOC2007' / 'ImageSets' / 'Main' / 'test.txt'}: split file does not exist" in text
    assert "2012tr0000.xml: unparsable XML" in text
    assert len(problems) == 5, text


def test_many_missing_files_are_counted_not_all_named(tmp_path, capsys):
    coco = make_coco(tmp_path / "coco", n_train=MAX_LISTED + 4)
    for path in sorted((coco / "train2017").iterdir()):
        path.unlink()
    code, errors, _ = check(capsys, "--coco", str(coco), "--no-counts")
    assert code == 2
    named = [e for e in errors if "image file listed in" in e]
    assert len(named) == MAX_LISTED
    assert any("4 more image files listed in" in e and f"({MAX_LISTED + 4} in all)" in e for e in errors), errors


def test_broken_annotation_file_and_missing_root(tmp_path, capsys):
    coco = make_coco(tmp_path / "coco")
    (coco / "annotations" / "instances_train2017.json").write_text("{not json")
    code, errors, _ = check(capsys, "--coco", str(coco), "--voc", str(tmp_path / "nope"), *SMALL)
    assert code == 2
    assert any("instances_train2017.json: malformed JSON" in e for e in errors)
    assert any(f"{tmp_path / 'nope'}: VOCdevkit folder does not exist" in e for e in errors)


# ---------------------------------------------------------------- every image opened (the example dataset)

@pytest.fixture(scope="module")
def example(tmp_path_factory):
    from ld_core.data.example import make_example

    return make_example(tmp_path_factory.mktemp("example") / "parts", num_train=8, num_val=4, image_size=64)


@pytest.fixture
def parts(example, tmp_path):
    """A private copy of the example dataset (COCO and VOC format) that a test may break."""
    return Path(shutil.copytree(example, tmp_path / "parts"))


def check_parts(capsys, parts, *extra):
    code, errors, stdout = check(capsys, "--dataset", str(parts / "dataset.yaml"), "--voc-dataset",
                                 str(parts / "dataset_voc.yaml"), *extra)
    return code, errors, stdout


def _edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_example_dataset_passes_and_every_image_is_opened(parts, tmp_path, capsys):
    out = tmp_path / "ok.json"
    code, errors, stdout = check_parts(capsys, parts, "--out", str(out))
    assert code == 0 and errors == [], errors
    assert "[check-data] opened 24 images" in stdout  # 8 + 4 COCO, 8 + 4 VOC
    summary = json.loads(out.read_text())
    assert summary["images_opened"] == 24
    assert summary["summary"]["dataset"]["val"]["left_out"] == {}


@pytest.mark.parametrize("split", ["train", "val"])
def test_truncated_empty_and_random_bytes_images_are_one_line_each(parts, tmp_path, capsys, split):
    pictures = sorted((parts / "pictures" / split).iterdir())
    voc_image = parts / "voc" / "parts" / "JPEGImages" / f"{split}_000002.jpg"
    truncated, empty, garbage = pictures[0], pictures[1], pictures[2]
    truncated.write_bytes(truncated.read_bytes()[:-200])  # the end of the JPEG cut off
    empty.write_bytes(b"")
    garbage.write_bytes(np.random.default_rng(0).bytes(3000))
    voc_image.write_bytes(voc_image.read_bytes()[: len(voc_image.read_bytes()) // 2])
    out = tmp_path / "ok.json"
    code, errors, _ = check_parts(capsys, parts, "--out", str(out))
    assert code == 2 and not out.exists()
    problems = errors[:-1]
    assert errors[-1] == "error: 4 dataset problem(s) found; fix them before training", errors
    assert f"error: {truncated}: image file is truncated or corrupt (image file is truncated" in "\n".join(problems)
    assert f"error: {empty}: image file is empty (0 bytes)" in problems
    assert f"error: {garbage}: image file cannot be decoded (not an image, or corrupt; 3,000 bytes)" in problems
    assert any(p.startswith(f"error: {voc_image}: image file is truncated") for p in problems), problems


def test_truncation_is_caught_even_where_cv2_decodes_part_of_the_image(example):
    """Older OpenCV builds return a half-grey image for a truncated JPEG: Pillow's full read is the check."""
    from ld_core.data.images import ImageItem, _pillow_problem, open_image

    image = sorted((example / "pictures" / "train").iterdir())[0]
    data = image.read_bytes()
    assert _pillow_problem(data) is None
    for cut in (len(data) // 3, len(data) - 100, len(data) - 2):
        assert "truncated" in _pillow_problem(data[:cut])
    assert open_image(ImageItem(str(image), 64, 64, "x.json")) is None


def test_an_image_of_another_size_than_its_annotation_is_an_error(parts, capsys):
    _edit_json(parts / "labels" / "train.json", lambda d: d["images"][2].update(width=80))
    xml = parts / "voc" / "parts" / "Annotations" / "val_000003.xml"
    xml.write_text(xml.read_text().replace("<height>64</height>", "<height>96</height>"))
    code, errors, _ = check_parts(capsys, parts)
    assert code == 2
    image = parts / "pictures" / "train" / "000003.jpg"
    assert f"error: {image}: image is 64x64 but {parts / 'labels' / 'train.json'} says 80x64 (width x height)" in errors
    voc_image = parts / "voc" / "parts" / "JPEGImages" / "val_000003.jpg"
    assert f"error: {voc_image}: image is 64x64 but {xml} says 64x96 (width x height)" in errors
    assert len(errors) == 3, errors


def test_an_exif_rotated_image_is_named_as_such(parts, capsys):
    """Training (cv2, colour) applies EXIF orientation: a portrait photo stored landscape loads rotated."""
    from PIL import Image

    image = parts / "pictures" / "val" / "000002.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees
    Image.open(image).crop((0, 0, 64, 48)).save(image, exif=exif)
    _edit_json(parts / "labels" / "val.json", lambda d: d["images"][1].update(width=64, height=48))
    code, errors, _ = check_parts(capsys, parts)
    assert code == 2
    assert errors[0] == (f"error: {image}: image is 48x64 but {parts / 'labels' / 'val.json'} says 64x48 (width x "
                         "height) (its EXIF orientation rotates it as training loads it)"), errors


def test_zero_width_boxes_are_reported_not_refused(parts, tmp_path, capsys):
    def squash(d):
        d["annotations"][0]["bbox"][2] = 0
        d["annotations"][1]["bbox"][3] = 0.5
    _edit_json(parts / "labels" / "val.json", squash)
    out = tmp_path / "ok.json"
    code = main(["check-data", "--dataset", str(parts / "dataset.yaml"), "--out", str(out)])
    stderr = capsys.readouterr().err
    assert code == 0 and "error: " not in stderr, stderr
    split = json.loads(out.read_text())["summary"]["dataset"]["val"]
    assert split["left_out"] == {"under-1px": 1, "zero-area": 1}
    warnings = [line for line in stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1, stderr
    val = json.loads((parts / "labels" / "val.json").read_text())
    first = val["annotations"][0]
    image = next(i["file_name"] for i in val["images"] if i["id"] == first["image_id"])
    assert warnings[0].startswith(f"warning: {parts / 'labels' / 'val.json'}: 2 of {len(val['annotations'])} boxes are "
                                  "left out of training (mmdet) and of the evaluation's ground truth: "), warnings
    assert f"1 of zero width, height or area (e.g. annotation id {first['id']}, image {image})" in warnings[0]
    assert "1 narrower or lower than 1 pixel" in warnings[0]


@pytest.mark.parametrize("case", ["val_empty", "train_empty", "val_only_zero_area", "voc_test_only_difficult"])
def test_a_split_without_usable_boxes_is_an_error(parts, tmp_path, capsys, case):
    if case == "val_empty":
        _edit_json(parts / "labels" / "val.json", lambda d: d.update(annotations=[]))
        where, needle = parts / "labels" / "val.json", "lists no annotations"
    elif case == "train_empty":
        _edit_json(parts / "labels" / "train.json", lambda d: d.update(annotations=[]))
        where, needle = parts / "labels" / "train.json", "lists no annotations"
    elif case == "val_only_zero_area":
        _edit_json(parts / "labels" / "val.json", lambda d: [a["bbox"].__setitem__(2, 0) for a in d["annotations"]])
        where, needle = parts / "labels" / "val.json", "has no box that training learns from or the evaluation"
    else:
        for xml in (parts / "voc" / "parts" / "Annotations").glob("val_*.xml"):
            xml.write_text(xml.read_text().replace("<difficult>0</difficult>", "<difficult>1</difficult>"))
        where, needle = parts / "voc" / "parts" / "ImageSets" / "Main" / "test.txt", "all of them difficult objects"
    out = tmp_path / "ok.json"
    code, errors, _ = check_parts(capsys, parts, "--out", str(out))
    assert code == 2 and not out.exists()
    assert len(errors) == 2 and errors[0].startswith(f"error: {where}: ") and needle in errors[0], errors


def test_many_images_are_opened_in_parallel_with_progress_lines(tmp_path):
    from ld_core.data.example import make_example

    parts = make_example(tmp_path / "many", num_train=300, num_val=100, image_size=32, max_objects=1)
    broken = parts / "pictures" / "train" / "000150.jpg"
    broken.write_bytes(broken.read_bytes()[:100])
    proc = subprocess.run([sys.executable, "-m", "ld_core", "check-data", "--dataset", str(parts / "dataset.yaml"),
                           "--voc-dataset", str(parts / "dataset_voc.yaml"), "--threads", "2",
                           "--progress-every", "200"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    progress = [line for line in proc.stdout.splitlines() if line.startswith("[check-data] opened ")]
    assert len(progress) >= 4 and all(" / 800 images (" in line for line in progress[:-1]), proc.stdout
    assert progress[-1].startswith("[check-data] opened 800 images in ") and "(2 processes): 1 problem(s)" in progress[-1]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert errors[0].startswith(f"error: {broken}: image file is truncated or corrupt") and len(errors) == 2, errors
