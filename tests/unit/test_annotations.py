"""ld_core.data.annotations: a generated dataset passes; every problem is a one-line DataError naming the file."""
from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

from ld_core.data import synthetic
from ld_core.data.annotations import validate_coco, validate_voc
from ld_core.errors import DataError


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("valid") / "ds"
    info = synthetic.generate(out, seed=4, num_train=6, num_val=3, image_size=64, max_objects=4)
    return out, info


@pytest.fixture
def copy_of(dataset, tmp_path):
    """A private copy of the generated dataset that a test may break."""
    out, info = dataset
    dst = tmp_path / "ds"
    shutil.copytree(out, dst)
    return dst, info


def _one_line_error(excinfo, path, *needles):
    message = str(excinfo.value)
    assert "\n" not in message and "\r" not in message, message
    assert message.startswith(f"{path}: "), message
    assert "Traceback" not in message
    for needle in needles:
        assert needle in message, message
    return message


def test_generated_dataset_passes_with_matching_counts(dataset):
    out, info = dataset
    for split in ("train", "val"):
        summary = validate_coco(out / "coco" / "annotations" / f"instances_{split}.json", out / "coco" / "images")
        assert summary == {"images": info["splits"][split]["images"],
                           "annotations": info["splits"][split]["annotations"], "categories": 4}
    for split, name in (("trainval", "train"), ("test", "val")):
        summary = validate_voc(out / "VOCdevkit", "VOC2007", split, classes=synthetic.CLASSES)
        assert summary["images"] == info["splits"][name]["images"]
        assert summary["annotations"] == info["splits"][name]["annotations"]
    # without an image folder only the annotations are checked
    assert validate_coco(out / "coco" / "annotations" / "instances_val.json")["images"] == 3


def _mutate(data: dict, case: str) -> dict:
    data = copy.deepcopy(data)
    anns, imgs = data["annotations"], data["images"]
    if case == "missing_annotations":
        del data["annotations"]
    elif case == "unknown_image":
        anns[0]["image_id"] = 999
    elif case == "unknown_category":
        anns[0]["category_id"] = 12
    elif case == "bbox_three":
        anns[0]["bbox"] = anns[0]["bbox"][:3]
    elif case == "bbox_negative":
        anns[0]["bbox"][2] = -1.0
    elif case == "bbox_string":
        anns[0]["bbox"][1] = "3"
    elif case == "bbox_bool":
        anns[0]["bbox"] = [True, 0, 1, 1]
    elif case == "duplicate_image":
        imgs[1]["id"] = imgs[0]["id"]
    elif case == "duplicate_annotation":
        anns[1]["id"] = anns[0]["id"]
    elif case == "missing_area":
        del anns[0]["area"]
    elif case == "image_without_size":
        del imgs[0]["height"]
    elif case == "categories_not_list":
        data["categories"] = {"1": "ellipse"}
    elif case == "no_categories":
        data["categories"] = []
    elif case == "top_level_list":
        return [data]
    elif case == "no_annotations":
        data["annotations"] = []
    elif case == "only_zero_area":
        for ann in anns:
            ann["bbox"][3] = 0.0
    elif case == "only_crowd":
        for ann in anns:
            ann["iscrowd"] = 1
    return data


COCO_CASES = {
    "missing_annotations": ["missing key 'annotations'"],
    "unknown_image": ["annotation id 1 refers to unknown image_id 999"],
    "unknown_category": ["annotation id 1 refers to unknown category_id 12"],
    "bbox_three": ["bbox of annotation 1 must be 4 numbers with w,h >= 0"],
    "bbox_negative": ["bbox of annotation 1 must be 4 numbers with w,h >= 0"],
    "bbox_string": ["bbox of annotation 1"],
    "bbox_bool": ["bbox of annotation 1"],
    "duplicate_image": ["duplicate image id 1"],
    "duplicate_annotation": ["duplicate annotation id 1"],
    "missing_area": ["annotation id 1 is missing key 'area'"],
    "image_without_size": ["image entry 0 is missing key 'height'"],
    "categories_not_list": ["'categories' must be a list"],
    "no_categories": ["'categories' is empty"],
    "top_level_list": ["top level must be a JSON object"],
    # a split without a box to learn from or score against: refused before training or evaluation
    "no_annotations": ["lists no annotations"],
    "only_zero_area": ["has no box that training learns from", "all of them crowd regions or boxes mmdet leaves out"],
    "only_crowd": ["has no box that training learns from"],
}


@pytest.mark.parametrize("case", sorted(COCO_CASES))
def test_coco_errors(copy_of, case):
    out, _ = copy_of
    ann = out / "coco" / "annotations" / "instances_train.json"
    ann.write_text(json.dumps(_mutate(json.loads(ann.read_text()), case), indent=1))
    with pytest.raises(DataError) as excinfo:
        validate_coco(ann, out / "coco" / "images")
    _one_line_error(excinfo, ann, *COCO_CASES[case])


def test_malformed_json_reports_line_and_column(tmp_path):
    ann = tmp_path / "instances_train.json"
    ann.write_text('{\n  "images": [],\n  "annotations" []\n}\n')
    with pytest.raises(DataError) as excinfo:
        validate_coco(ann)
    _one_line_error(excinfo, ann, "malformed JSON (line 3, column 17: Expecting ':' delimiter)")


def test_missing_annotation_file(tmp_path):
    ann = tmp_path / "nope" / "instances_train.json"
    with pytest.raises(DataError) as excinfo:
        validate_coco(ann, tmp_path)
    _one_line_error(excinfo, ann, "does not exist")


def test_missing_image_folder(dataset, tmp_path):
    out, _ = dataset
    ann = out / "coco" / "annotations" / "instances_val.json"
    folder = tmp_path / "images"
    with pytest.raises(DataError) as excinfo:
        validate_coco(ann, folder)
    _one_line_error(excinfo, folder, "dataset folder does not exist")
    with pytest.raises(DataError):  # the folder is checked even when single images are not
        validate_coco(ann, folder, check_images=False)


def test_missing_image_file(copy_of):
    out, _ = copy_of
    ann = out / "coco" / "annotations" / "instances_val.json"
    images = out / "coco" / "images"
    (images / "val" / "000002.jpg").unlink()
    with pytest.raises(DataError) as excinfo:
        validate_coco(ann, images)
    _one_line_error(excinfo, images / "val" / "000002.jpg", f"image file listed in {ann} is missing")
    assert validate_coco(ann, images, check_images=False)["images"] == 3


def test_newlines_in_names_are_folded(copy_of):
    out, _ = copy_of
    ann = out / "coco" / "annotations" / "instances_val.json"
    data = json.loads(ann.read_text())
    data["images"][0]["file_name"] = "val/evil\nname.jpg"
    ann.write_text(json.dumps(data))
    with pytest.raises(DataError) as excinfo:
        validate_coco(ann, out / "coco" / "images")
    assert "\n" not in str(excinfo.value) and "evil name.jpg" in str(excinfo.value)


# ----------------------------------------------------------------------------- VOC
def _voc(out: Path) -> Path:
    return out / "VOCdevkit" / "VOC2007"


def test_voc_missing_devkit_and_split(copy_of, tmp_path):
    out, _ = copy_of
    with pytest.raises(DataError) as excinfo:
        validate_voc(tmp_path / "absent")
    _one_line_error(excinfo, tmp_path / "absent", "dataset folder does not exist")
    with pytest.raises(DataError) as excinfo:
        validate_voc(out / "VOCdevkit", "VOC2012")
    _one_line_error(excinfo, out / "VOCdevkit" / "VOC2012", "dataset folder does not exist")
    split = _voc(out) / "ImageSets" / "Main" / "val.txt"
    with pytest.raises(DataError) as excinfo:
        validate_voc(out / "VOCdevkit", split="val")
    _one_line_error(excinfo, split, "split file does not exist")


def test_voc_missing_xml(copy_of):
    out, _ = copy_of
    xml = _voc(out) / "Annotations" / "train_000002.xml"
    xml.unlink()
    with pytest.raises(DataError) as excinfo:
        validate_voc(out / "VOCdevkit")
    _one_line_error(excinfo, xml, "is missing", "trainval.txt")


def test_voc_unparsable_xml(copy_of):
    out, _ = copy_of
    xml = _voc(out) / "Annotations" / "val_000001.xml"
    xml.write_text("<annotation><object>\n<name>stick</name>\n</annotation>")
    with pytest.raises(DataError) as excinfo:
        validate_voc(out / "VOCdevkit", split="test")
    _one_line_error(excinfo, xml, "unparsable XML (mismatched tag: line 3")


@pytest.mark.parametrize("old,new,needle", [
    ("<name>", "<name>zebra_", "object name 'zebra_"),
    ("<xmin>", "<xmin>x", "has a bad bndbox"),
    ("<xmax>", "<xmax>-", "has a bad bndbox"),
    ("<ymin>", "<ymin>9", "has a bad bndbox"),  # ymin > ymax (or outside the image)
    ("<width>64</width>", "<width>0</width>", "bad <size>"),
])
def test_voc_bad_objects(copy_of, old, new, needle):
    out, _ = copy_of
    xml = _voc(out) / "Annotations" / "train_000001.xml"
    text = xml.read_text()
    assert old in text
    xml.write_text(text.replace(old, new, 1))
    with pytest.raises(DataError) as excinfo:
        validate_voc(out / "VOCdevkit", classes=synthetic.CLASSES)
    _one_line_error(excinfo, xml, needle)


def test_voc_unknown_names_pass_without_class_list(copy_of):
    out, _ = copy_of
    xml = _voc(out) / "Annotations" / "train_000001.xml"
    xml.write_text(xml.read_text().replace("<name>", "<name>zebra_", 1))
    assert validate_voc(out / "VOCdevkit")["categories"] >= 2


def test_voc_missing_image(copy_of):
    out, _ = copy_of
    image = _voc(out) / "JPEGImages" / "val_000003.jpg"
    image.unlink()
    with pytest.raises(DataError) as excinfo:
        validate_voc(out / "VOCdevkit", split="test")
    _one_line_error(excinfo, image, "is missing")
    assert validate_voc(out / "VOCdevkit", split="test", check_images=False)["images"] == 3


def test_voc_split_of_difficult_objects_only(copy_of):
    out, _ = copy_of
    split = _voc(out) / "ImageSets" / "Main" / "test.txt"
    for xml in (_voc(out) / "Annotations").glob("val_*.xml"):
        xml.write_text(xml.read_text().replace("<difficult>0</difficult>", "<difficult>1</difficult>"))
    with pytest.raises(DataError) as excinfo:
        validate_voc(out / "VOCdevkit", split="test")
    _one_line_error(excinfo, split, "has no box that training learns from", "all of them difficult objects")
    assert validate_voc(out / "VOCdevkit", split="trainval")["images"] == 6  # the other split is untouched
