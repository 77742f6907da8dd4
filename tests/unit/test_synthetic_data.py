"""ld_core.data.synthetic: layout, COCO/VOC agreement, box geometry, determinism, atomic publication."""
from __future__ import annotations

import argparse
import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ld_core.commands import synthetic_data
from ld_core.data import synthetic
from ld_core.errors import ConfigError, DataError

SMALL = dict(seed=0, num_train=12, num_val=4, image_size=64, max_objects=6)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "ds"
    info = synthetic.generate(out, **SMALL)
    return out, info


def _coco(out: Path, split: str) -> dict:
    return json.loads((out / "coco" / "annotations" / f"instances_{split}.json").read_text())


def _voc_objects(xml_path: Path):
    root = ET.parse(xml_path).getroot()
    objs = []
    for obj in root.findall("object"):
        box = obj.find("bndbox")
        objs.append((obj.findtext("name"), tuple(int(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))))
    return root, objs


def test_layout_and_pycocotools_load(small):
    from pycocotools.coco import COCO

    out, info = small
    assert json.loads((out / "dataset.json").read_text()) == info
    assert info["classes"] == list(synthetic.CLASSES) and len(synthetic.CLASSES) == 4
    assert info["params"] == {**SMALL, "min_size_frac": 1 / 16, "class_colour": False}
    for split, n in (("train", 12), ("val", 4)):
        coco = COCO(str(out / "coco" / "annotations" / f"instances_{split}.json"))
        assert len(coco.getImgIds()) == n == info["splits"][split]["images"]
        assert len(coco.getAnnIds()) == info["splits"][split]["annotations"]
        assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(synthetic.CLASSES)
        assert sorted(coco.getCatIds()) == [1, 2, 3, 4]
        # every image has at least one object (the top-most one can never be occluded)
        assert all(coco.getAnnIds(imgIds=[i]) for i in coco.getImgIds())
    voc = out / "VOCdevkit" / "VOC2007"
    trainval = (voc / "ImageSets" / "Main" / "trainval.txt").read_text().split()
    test = (voc / "ImageSets" / "Main" / "test.txt").read_text().split()
    assert trainval == [f"train_{i:06d}" for i in range(1, 13)]
    assert test == [f"val_{i:06d}" for i in range(1, 5)]
    assert not set(trainval) & set(test)
    # nothing but the documented layout, no temporary leftovers beside it
    assert sorted(p.name for p in out.iterdir()) == ["VOCdevkit", "coco", "dataset.json"]
    assert [p.name for p in out.parent.iterdir()] == ["ds"]


def test_images_exist_with_declared_size(small):
    out, _ = small
    for split in ("train", "val"):
        data = _coco(out, split)
        for img in data["images"]:
            path = out / "coco" / "images" / img["file_name"]
            assert img["file_name"].startswith(f"{split}/") and path.suffix == ".jpg"
            with Image.open(path) as im:
                assert im.format == "JPEG" and im.mode == "RGB"
                assert im.size == (img["width"], img["height"]) == (64, 64)
                pixels = np.asarray(im)
            assert pixels.std() > 5  # not a blank picture
            stem = f"{split}_{Path(img['file_name']).stem}"
            assert (out / "VOCdevkit" / "VOC2007" / "JPEGImages" / f"{stem}.jpg").read_bytes() == path.read_bytes()


def test_boxes_inside_image_and_well_formed(small):
    out, _ = small
    for split in ("train", "val"):
        data = _coco(out, split)
        sizes = {i["id"]: (i["width"], i["height"]) for i in data["images"]}
        ids = [a["id"] for a in data["annotations"]]
        assert ids == list(range(1, len(ids) + 1))
        for ann in data["annotations"]:
            x, y, w, h = ann["bbox"]
            width, height = sizes[ann["image_id"]]
            assert all(isinstance(v, float) or isinstance(v, int) for v in ann["bbox"])
            assert 0 <= x and 0 <= y and x + w <= width + 1e-6 and y + h <= height + 1e-6
            assert w >= 1.0 and h >= 1.0
            assert ann["area"] == pytest.approx(w * h, abs=0.01)
            assert ann["iscrowd"] == 0 and 1 <= ann["category_id"] <= 4


def test_all_classes_and_a_range_of_scales(tmp_path):
    info = synthetic.generate(tmp_path / "ds", seed=3, num_train=40, num_val=2, image_size=64)
    counts = info["splits"]["train"]["per_class"]
    assert set(counts) == set(synthetic.CLASSES) and min(counts.values()) > 0, counts
    anns = _coco(tmp_path / "ds", "train")["annotations"]
    assert sum(counts.values()) == len(anns)
    sides = np.array([max(a["bbox"][2], a["bbox"][3]) for a in anns])
    assert sides.min() < 10 and sides.max() > 30  # 4 px .. 45 px at 64 px
    sticks = [a["bbox"] for a in anns if a["category_id"] == 4 and 0 < a["bbox"][0] and 0 < a["bbox"][1]
              and a["bbox"][0] + a["bbox"][2] < 64 and a["bbox"][1] + a["bbox"][3] < 64]
    for _, _, w, h in sticks:  # untruncated sticks are elongated (aspect >= 4, or its 2-px floor)
        assert max(w, h) / min(w, h) >= 3.99 or min(w, h) == pytest.approx(2.0, abs=0.01)


def test_voc_boxes_match_coco(small):
    out, _ = small
    assert synthetic.voc_bndbox([0.0, 0.0, 10.0, 5.0]) == (1, 1, 10, 5)  # a 10x5 box at the origin
    assert synthetic.voc_bndbox([2.49, 3.5, 4.0, 1.0]) == (3, 5, 6, 5)
    names = dict(enumerate(synthetic.CLASSES, start=1))
    checked = 0
    for split in ("train", "val"):
        data = _coco(out, split)
        for img in data["images"]:
            stem = f"{split}_{Path(img['file_name']).stem}"
            root, objs = _voc_objects(out / "VOCdevkit" / "VOC2007" / "Annotations" / f"{stem}.xml")
            assert root.findtext("filename") == f"{stem}.jpg"
            assert (root.findtext("size/width"), root.findtext("size/height"), root.findtext("size/depth")) == \
                ("64", "64", "3")
            anns = [a for a in data["annotations"] if a["image_id"] == img["id"]]
            assert len(anns) == len(objs)
            for ann, (name, (xmin, ymin, xmax, ymax)) in zip(anns, objs):
                x, y, w, h = ann["bbox"]
                assert name == names[ann["category_id"]]
                assert (xmin, ymin) == (math.floor(x + 0.5) + 1, math.floor(y + 0.5) + 1)
                assert (xmax, ymax) == (math.floor(x + w + 0.5), math.floor(y + h + 0.5))
                assert 1 <= xmin <= xmax <= 64 and 1 <= ymin <= ymax <= 64
                checked += 1
    assert checked > 10


def test_deterministic_and_seed_dependent(tmp_path, small):
    out, _ = small
    again = tmp_path / "again"
    synthetic.generate(again, **SMALL)
    rel = ["coco/annotations/instances_train.json", "coco/annotations/instances_val.json", "dataset.json",
           "VOCdevkit/VOC2007/Annotations/train_000003.xml", "VOCdevkit/VOC2007/ImageSets/Main/test.txt",
           "coco/images/val/000002.jpg"]
    for name in rel:
        assert (out / name).read_bytes() == (again / name).read_bytes(), name
    other = tmp_path / "other"
    synthetic.generate(other, **{**SMALL, "seed": 1})
    assert (other / rel[0]).read_bytes() != (out / rel[0]).read_bytes()
    assert (other / rel[5]).read_bytes() != (out / rel[5]).read_bytes()
    # train and val are different streams: image 1 of each differs
    assert (out / "coco/images/train/000001.jpg").read_bytes() != (out / "coco/images/val/000001.jpg").read_bytes()
    # each image depends only on (seed, split, index): a longer run starts with the same images
    longer = tmp_path / "longer"
    synthetic.generate(longer, **{**SMALL, "num_train": 13})
    assert (longer / "coco/images/train/000012.jpg").read_bytes() == (out / "coco/images/train/000012.jpg").read_bytes()


@pytest.mark.parametrize("cls", range(4))
def test_box_is_geometric_extent_of_shape(cls):
    """The 0-level of the signed distance (the 0.5 level of any blur) spans exactly the GT box."""
    rng = np.random.default_rng(cls)
    step = 0.05
    for _ in range(5):
        params = synthetic._object_params(rng, 128, np.zeros(3))
        params["cls"] = cls
        box = params["box"]
        tri = synthetic._triangle_vertices(*box, int(rng.integers(4)), float(rng.random())) if cls == 2 else None
        xs = np.arange(box[0] - 2, box[2] + 2, step)
        ys = np.arange(box[1] - 2, box[3] + 2, step)
        inside = synthetic._signed_distance(cls, xs[None, :], ys[:, None], box, tri) <= 0
        cols, rows = np.nonzero(inside.any(axis=0))[0], np.nonzero(inside.any(axis=1))[0]
        extent = (xs[cols[0]], ys[rows[0]], xs[cols[-1]], ys[rows[-1]])
        tol = 2 * step if cls != 2 else 0.5  # a triangle's apex is a thin tip that the grid may just miss
        for got, want in zip(extent, box):
            assert abs(got - want) <= tol, (cls, extent, box)


def test_blur_leaves_half_level_on_the_edge():
    """A blurred rectangle's rendered opacity crosses 0.5 at the GT box edge (on a plain background)."""
    size = 64
    centres = np.arange(size) + 0.5
    box = (20.0, 10.0, 44.0, 54.0)
    for sigma in (0.4, 1.5, 3.0):
        d = synthetic._signed_distance(1, centres[None, :], centres[:, None], box, None)
        alpha = 1.0 / (1.0 + np.exp(1.702 * d / sigma))
        row = alpha[32]
        assert row[19] < 0.5 < row[20] and row[43] > 0.5 > row[44]  # pixel centres 19.5 / 20.5 etc.
        assert row[20] == pytest.approx(1 - row[19], abs=1e-9)


def test_max_objects_one_gives_one_object_per_image(tmp_path):
    info = synthetic.generate(tmp_path / "ds", seed=5, num_train=10, num_val=2, image_size=64, max_objects=1)
    assert info["splits"]["train"]["annotations"] == 10 and info["splits"]["train"]["dropped_occluded"] == 0


def test_occlusion_drops_hidden_objects(tmp_path):
    info = synthetic.generate(tmp_path / "ds", seed=0, num_train=30, num_val=2, image_size=64, max_objects=8)
    tr = info["splits"]["train"]
    assert tr["dropped_occluded"] > 0  # some objects are mostly hidden and not annotated
    assert tr["annotations"] >= 30


def test_dataset_json_is_written_last_inside_the_temp_folder(tmp_path, monkeypatch):
    written, published = [], []
    real_write, real_publish = synthetic._write, synthetic._publish

    def record_write(path, data):
        written.append(Path(path))
        real_write(path, data)

    def record_publish(tmp, out):
        published.append((tmp, (tmp / "dataset.json").is_file(), out.exists()))
        real_publish(tmp, out)

    monkeypatch.setattr(synthetic, "_write", record_write)
    monkeypatch.setattr(synthetic, "_publish", record_publish)
    out = tmp_path / "ds"
    synthetic.generate(out, seed=0, num_train=3, num_val=2, image_size=64)
    assert written[-1].name == "dataset.json"
    assert sum(p.name == "dataset.json" for p in written) == 1
    tmp, had_marker, out_existed = published[0]
    assert all(tmp in p.parents for p in written)  # nothing is written into out_dir directly
    assert tmp.parent == out.parent and tmp.name.startswith(".ds.tmp-")
    assert had_marker and not out_existed
    assert not tmp.exists() and (out / "dataset.json").is_file()


@pytest.mark.parametrize("where", ["render", "marker", "publish"])
def test_interrupted_generation_leaves_no_out_dir(tmp_path, monkeypatch, where):
    calls = []

    def boom(*args, **kwargs):
        raise KeyboardInterrupt("simulated interrupt")

    if where == "render":
        real = synthetic._render_image

        def render(*args, **kwargs):
            calls.append(1)
            if len(calls) == 3:
                boom()
            return real(*args, **kwargs)

        monkeypatch.setattr(synthetic, "_render_image", render)
    elif where == "marker":
        real_write = synthetic._write
        monkeypatch.setattr(synthetic, "_write",
                            lambda path, data: boom() if Path(path).name == "dataset.json" else real_write(path, data))
    else:
        monkeypatch.setattr(synthetic, "_publish", boom)
    out = tmp_path / "ds"
    with pytest.raises(KeyboardInterrupt):
        synthetic.generate(out, seed=0, num_train=4, num_val=2, image_size=64)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # the temporary sibling is removed too


def test_existing_out_dir_is_replaced_or_kept_on_failure(tmp_path, monkeypatch):
    out = tmp_path / "ds"
    synthetic.generate(out, seed=0, num_train=3, num_val=1, image_size=64)
    first = (out / "coco/annotations/instances_train.json").read_bytes()
    (out / "coco" / "stale.txt").write_text("old")
    # a failed regeneration keeps the complete old tree
    monkeypatch.setattr(synthetic, "_render_image", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("x")))
    with pytest.raises(RuntimeError):
        synthetic.generate(out, seed=1, num_train=3, num_val=1, image_size=64)
    assert (out / "coco" / "stale.txt").exists()
    assert json.loads((out / "dataset.json").read_text())["params"]["seed"] == 0
    monkeypatch.undo()
    synthetic.generate(out, seed=1, num_train=3, num_val=1, image_size=64)
    assert not (out / "coco" / "stale.txt").exists()
    assert (out / "coco/annotations/instances_train.json").read_bytes() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]
    # an empty folder pre-created by a workflow manager is fine
    empty = tmp_path / "empty"
    (empty / "coco" / "annotations").mkdir(parents=True)
    synthetic.generate(empty, seed=0, num_train=2, num_val=1, image_size=64)
    assert (empty / "dataset.json").is_file()


def test_refuses_to_replace_a_foreign_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(DataError) as err:
        synthetic.generate(tmp_path, seed=0, num_train=2, num_val=1, image_size=64)
    assert str(err.value).startswith(str(tmp_path)) and "notes.txt" in str(err.value)
    assert "\n" not in str(err.value)
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("bad", [{"num_train": 0}, {"image_size": 16}, {"max_objects": 0}, {"num_val": 2.5}])
def test_bad_parameters_are_one_line_errors(tmp_path, bad):
    with pytest.raises(ConfigError) as err:
        synthetic.generate(tmp_path / "ds", **{**SMALL, **bad})
    assert "\n" not in str(err.value) and next(iter(bad)) in str(err.value)
    assert not (tmp_path / "ds").exists()


def test_command_line(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    synthetic_data.add_arguments(parser)
    out = tmp_path / "cli"
    args = parser.parse_args(["--out", str(out), "--seed", "2", "--num-train", "3", "--num-val", "2",
                              "--image-size", "64", "--max-objects", "2"])
    assert synthetic_data.run(args) == 0
    info = json.loads((out / "dataset.json").read_text())
    assert info["params"] == {"seed": 2, "num_train": 3, "num_val": 2, "image_size": 64, "max_objects": 2,
                              "min_size_frac": 1 / 16, "class_colour": False}
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and "3 train / 2 val images" in line and line.endswith(str(out))


def test_class_colour_and_min_size_design_knobs(tmp_path):
    """class_colour: each class's objects take hues from their own band; min_size_frac bounds the longer side."""
    import colorsys

    rng = np.random.default_rng(0)
    hues = {c: [] for c in range(len(synthetic.CLASSES))}
    for _ in range(400):
        params = synthetic._object_params(rng, 128, np.zeros(3), min_size_frac=0.125, class_colour=True)
        x1, y1, x2, y2 = params["box"]
        assert max(x2 - x1, y2 - y1) >= 0.125 * 128 - 1e-6
        hues[params["cls"]].append(colorsys.rgb_to_hsv(*params["colour"])[0])
    for cls, values in hues.items():
        centre = cls / len(synthetic.CLASSES)
        dist = [min(abs(h - centre), 1 - abs(h - centre)) for h in values]
        assert values and max(dist) <= 1 / (4 * len(synthetic.CLASSES)) + 1e-9, cls
    info = synthetic.generate(tmp_path / "ds", seed=1, num_train=4, num_val=2, image_size=64,
                              min_size_frac=0.125, class_colour=True)
    assert info["params"]["class_colour"] is True and info["params"]["min_size_frac"] == 0.125
    with pytest.raises(ConfigError, match="min_size_frac"):
        synthetic.generate(tmp_path / "bad", min_size_frac=0.9)
