"""Qualitative figures: image rule on the baseline only, NMS override, the whole-split NMS redundancy
numbers, atomic output, one-line input errors.

Two tiny random-weight GFL models (the "LD" one written as a distiller config whose teacher does not
exist, so it only loads through ``student_only``) on a 6-image synthetic val split.
"""
from __future__ import annotations

import copy
import json

import pytest

from helpers import tiny_gfl_cfg

torch = pytest.importorskip("torch")

SIZE = 64
PIPELINE = [dict(type="LoadImageFromFile"), dict(type="Resize", scale=(SIZE, SIZE), keep_ratio=True),
            dict(type="LoadAnnotations", with_bbox=True),
            dict(type="PackDetInputs", meta_keys=("img_id", "img_path", "ori_shape", "img_shape", "scale_factor"))]


def _model_cfg(num_classes=4):
    # reg_max 4: a near-uniform random distribution gives ~16-px edges at stride 8, i.e. varied,
    # overlapping boxes (with reg_max 16 every box would cover the whole 64-px image)
    cfg = tiny_gfl_cfg(num_classes=num_classes, reg_max=4)
    # score_thr 0 so random weights give boxes; no cap, so the NMS threshold alone decides the count
    cfg["test_cfg"].update(score_thr=0.0, nms_pre=1000, max_per_img=1000)
    return cfg


def _full_cfg(model, classes):
    return dict(default_scope="mmdet", model=model,
                test_dataloader=dict(batch_size=1, dataset=dict(
                    type="CocoDataset", data_root="/nonexistent/data", ann_file="annotations/instances_val.json",
                    data_prefix=dict(img="images/"), metainfo=dict(classes=tuple(classes)), test_mode=True,
                    pipeline=copy.deepcopy(PIPELINE))))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config

    import ld_core.models  # noqa: F401
    from ld_core.data.synthetic import CLASSES, generate
    from ld_core.models.checkpoints import save_tensor_checkpoint

    register_all_modules(init_default_scope=True)
    tmp = tmp_path_factory.mktemp("figures")
    generate(tmp / "synthetic", num_train=4, num_val=6, image_size=SIZE, max_objects=3)
    coco = tmp / "synthetic" / "coco"

    files = {}
    for name, seed in (("baseline", 0), ("ld", 1)):
        model_cfg = _model_cfg(len(CLASSES))
        torch.manual_seed(seed)
        model = MODELS.build(copy.deepcopy(model_cfg))
        model.init_weights()  # GFL's own init (prior-probability bias): varied, non-saturated boxes
        ckpt = save_tensor_checkpoint(model, tmp / name / "checkpoint.pth", {"run": name})
        if name == "ld":  # a distilled config: student_only must strip the (missing) teacher
            model_cfg.update(type="LocalizationDistiller", teacher_config=str(tmp / "no_teacher.py"),
                             teacher_ckpt=str(tmp / "no_teacher.pth"))
            model_cfg["bbox_head"].update(type="LDGFLHead", loss_ld=dict(type="LocalizationDistillationLoss",
                                                                          loss_weight=0.25, T=10))
        cfg_path = tmp / name / "config.py"
        Config(_full_cfg(model_cfg, CLASSES)).dump(str(cfg_path))
        files[name] = (cfg_path, ckpt)
    return dict(tmp=tmp, files=files, ann=coco / "annotations" / "instances_val.json", img_dir=coco / "images")


def _args(setup, out_dir, **overrides):
    (bc, bk), (lc, lk) = setup["files"]["baseline"], setup["files"]["ld"]
    args = [bc, bk, lc, lk, setup["ann"], setup["img_dir"], out_dir]
    for key, value in overrides.items():
        idx = ["baseline_config", "baseline_checkpoint", "ld_config", "ld_checkpoint"].index(key)
        args[idx] = value
    return args


@pytest.fixture(scope="module")
def rendered(setup):
    from ld_core.report.figures import make_figures

    out = setup["tmp"] / "out"
    written = make_figures(*_args(setup, out), num_images_fig1=2, num_images_fig2=2, score_thr=0.0)
    return out, written, json.loads((out / "figures.json").read_text())


def test_four_figures_and_json_written(rendered):
    from PIL import Image

    out, written, _ = rendered
    names = sorted(p.name for p in out.iterdir())
    assert names == ["figure1.pdf", "figure1.png", "figure2.pdf", "figure2.png", "figures.json"]  # no temp files
    assert set(written) == {"figure1_png", "figure1_pdf", "figure2_png", "figure2_pdf", "json"}
    for stem in ("figure1", "figure2"):
        assert (out / f"{stem}.pdf").read_bytes()[:5] == b"%PDF-"
        assert (out / f"{stem}.pdf").stat().st_size > 5000
        with Image.open(out / f"{stem}.png") as im:
            w, h = im.size
        assert abs(w - 680) <= 2                    # 3.4 in at 200 dpi: one paper column
        assert 1.0 < h / w < 3.0                    # 2 rows (fig 1) / two 2x2 blocks (fig 2)


def test_image_selection_is_first_val_images_with_two_objects(rendered, setup):
    _, _, summary = rendered
    data = json.loads(setup["ann"].read_text())
    counts = {}
    for ann in data["annotations"]:
        counts[ann["image_id"]] = counts.get(ann["image_id"], 0) + 1
    # score_thr 0: the baseline detects something everywhere, so the rule is "first with >= 2 objects"
    eligible = [img["id"] for img in data["images"] if counts.get(img["id"], 0) >= 2]  # annotation-file order
    assert len(eligible) >= 2, "fixture dataset must have two val images with >= 2 objects"
    assert summary["figure1"]["image_ids"] == eligible[:2]
    assert summary["figure2"]["image_ids"] == eligible[:2]
    assert summary["image_rule_fill"] == []
    panels = summary["figure1"]["panels"]
    assert [(p["image_id"], p["model"]) for p in panels] == [(i, m) for i in eligible[:2] for m in ("GFocal", "LD")]
    assert "0.3" not in summary["figure1"]["caption"] and "score >= 0" in summary["figure1"]["caption"]
    for caption in (summary["figure1"]["caption"], summary["figure2"]["caption"]):
        assert summary["image_rule"] in caption


def test_select_images_rule_and_fill():
    import numpy as np

    from ld_core.errors import DataError
    from ld_core.report.figure_images import select_images

    def img(i, n_gt):
        return dict(id=i, gt_bboxes=np.zeros((n_gt, 4), np.float32))

    def det(*scores):
        return dict(scores=np.array(scores, np.float32))

    images = [img(10, 3), img(11, 1), img(12, 2), img(13, 2), img(14, 4)]
    base = [det(0.29), det(0.9), det(0.1, 0.31), det(), det(0.3)]  # 11: one object only; 13: nothing
    chosen, filled = select_images(images, base, 2, 0.3)
    assert [i["id"] for i in chosen] == [12, 14] and filled == []
    chosen, filled = select_images(images, base, 4, 0.3)  # only two meet the rule: the others follow them
    assert [i["id"] for i in chosen] == [12, 14, 10, 13] and filled == [10, 13]
    with pytest.raises(DataError, match="at least 2"):
        select_images([img(1, 1)], [det(0.9)], 1, 0.3)


def test_image_rule_follows_the_baseline_never_the_ld_model(setup):
    import numpy as np

    from ld_core.report.detections import detect_many, load_model
    from ld_core.report.figure_images import val_images
    from ld_core.report.figures import make_figures

    images = val_images(setup["ann"])
    paths = [setup["img_dir"] / i["file_name"] for i in images]
    top = {}
    for role in ("baseline", "ld"):
        dets = detect_many(load_model(*setup["files"][role]), paths, (0.6, 0.95))
        top[role] = np.array([float(d[0.6]["scores"].max(initial=0.0)) for d in dets])
    eligible = [k for k, i in enumerate(images) if len(i["gt_bboxes"]) >= 2]
    # a threshold the baseline's first eligible image misses but a later one reaches
    later = max(top["baseline"][k] for k in eligible[1:])
    assert later > top["baseline"][eligible[0]], "fixture: needs a later eligible image with a higher top score"
    thr = float((top["baseline"][eligible[0]] + later) / 2)
    expected = [images[k]["id"] for k in eligible if top["baseline"][k] >= thr][:1]
    assert expected and expected[0] != images[eligible[0]]["id"]

    summaries = []
    for name, ld_ckpt in (("rule", setup["files"]["ld"][1]), ("rule_swapped", setup["files"]["baseline"][1])):
        out = setup["tmp"] / name
        make_figures(*_args(setup, out, ld_checkpoint=ld_ckpt), num_images_fig1=1, num_images_fig2=1, score_thr=thr)
        summaries.append(json.loads((out / "figures.json").read_text()))
    for s in summaries:
        assert s["figure1"]["image_ids"] == s["figure2"]["image_ids"] == expected
        assert s["image_rule_fill"] == []
        assert next(p for p in s["figure1"]["panels"] if p["model"] == "GFocal")["drawn"] >= 1
    # the swap did change the LD model's detections, not the chosen images
    assert summaries[0]["nms_redundancy"]["ld"] != summaries[1]["nms_redundancy"]["ld"]
    assert summaries[1]["nms_redundancy"]["ld"] == summaries[1]["nms_redundancy"]["baseline"]


def test_detect_many_equals_detect_one_image_at_a_time(setup, tmp_path):
    import numpy as np
    from PIL import Image

    from ld_core.report.detections import detect, detect_many, load_model

    model = load_model(*setup["files"]["baseline"])
    paths = sorted((setup["img_dir"] / "val").glob("*.jpg"))
    with Image.open(paths[0]) as im:  # another shape after the pipeline: a batch of its own
        im.convert("RGB").resize((SIZE, SIZE * 5 // 8)).save(tmp_path / "wide.jpg")
    paths = paths[:3] + [tmp_path / "wide.jpg"] + paths[3:]
    many = detect_many(model, paths, (0.6, 0.95), batch_size=2)  # batches: 2, 1, 1 (wide), 2, 1
    assert model.bbox_head.test_cfg["nms"]["iou_threshold"] == 0.6
    for path, per_iou in zip(paths, many):
        for iou in (0.6, 0.95):
            one, batched = _canonical(detect(model, path, nms_iou=iou)), _canonical(per_iou[iou])
            assert len(batched["scores"]) == len(one["scores"]) > 0
            np.testing.assert_allclose(batched["bboxes"], one["bboxes"], atol=1e-3)
            np.testing.assert_allclose(batched["scores"], one["scores"], atol=1e-5)
            assert (batched["labels"] == one["labels"]).all()


def _canonical(det):
    """Detections in one order: equal scores may come out of NMS in either order (seen on AMD Zen 2)."""
    import numpy as np

    b = np.round(det["bboxes"], 1)
    order = np.lexsort((b[:, 3], b[:, 2], b[:, 1], b[:, 0], det["labels"], -np.round(det["scores"], 4)))
    return {key: det[key][order] for key in ("bboxes", "scores", "labels")}


def _det(boxes, scores, labels):
    import numpy as np

    return dict(bboxes=np.array(boxes, np.float32).reshape(-1, 4), scores=np.array(scores, np.float32),
                labels=np.array(labels, np.int64))


def test_redundancy_two_identical_boxes_on_one_gt():
    import numpy as np

    from ld_core.report.redundant_boxes import nms_redundancy

    gt = dict(id=1, gt_bboxes=np.array([[10, 10, 40, 40]], np.float32), gt_label_idx=np.array([0]))
    two = _det([[10, 10, 40, 40], [10, 10, 40, 40]], [0.9, 0.8], [0, 0])
    loose = _det([[10, 10, 40, 40], [10, 10, 40, 40], [12, 12, 40, 40]], [0.9, 0.8, 0.5], [0, 0, 0])
    dets = {"GFocal": [{0.6: two, 0.95: loose}], "LD": [{0.6: _det([[10, 10, 40, 40]], [0.9], [0]), 0.95: two}]}
    red = nms_redundancy([gt], dets, 0.3, (0.6, 0.95))
    assert red["images"] == 1 and red["score_thr"] == 0.3
    assert red["baseline"] == {"boxes_per_image_nms0.6": 2.0, "boxes_per_image_nms0.95": 3.0,
                               "surplus_per_image": 1.0, "redundant_per_image_nms0.6": 1.0}
    assert red["ld"] == {"boxes_per_image_nms0.6": 1.0, "boxes_per_image_nms0.95": 2.0,
                         "surplus_per_image": 1.0, "redundant_per_image_nms0.6": 0.0}
    for role in ("baseline", "ld"):
        assert red[role]["boxes_per_image_nms0.95"] >= red[role]["boxes_per_image_nms0.6"]


def test_redundancy_counts_only_duplicates_of_covered_objects():
    import numpy as np

    from ld_core.report.redundant_boxes import count_boxes

    gts = np.array([[0, 0, 20, 20], [30, 0, 50, 20], [60, 0, 80, 20], [0, 60, 20, 80]], np.float32)
    labels = np.array([0, 0, 1, -1])  # the last one: a category the model does not know
    det = _det([[0, 0, 20, 20],        # 0.90 finds GT 0
                [60, 0, 80, 20],       # 0.85 class 0 on a class-1 object: not a duplicate of anything
                [1, 0, 20, 20],        # 0.80 duplicate of GT 0                          -> redundant
                [30, 0, 50, 20],       # 0.70 finds GT 1
                [0, 60, 20, 80],       # 0.60 on the unknown-category object: never matched
                [0, 0, 21, 20],        # 0.50 duplicate of GT 0 again                    -> redundant
                [31, 0, 50, 20],       # 0.20 a duplicate, but under the score threshold
                [100, 100, 120, 120]], # 0.95 on nothing: a false positive, not a duplicate
               [0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.2, 0.95], [0, 0, 0, 0, 0, 0, 0, 0])
    assert count_boxes(det, gts, labels, 0.3) == (7, 2)
    # two overlapping GTs: a box is redundant only if the object it overlaps most is taken already
    pair = np.array([[0, 0, 20, 20], [0, 0, 20, 24]], np.float32)
    assert count_boxes(_det([[0, 0, 20, 20], [0, 0, 20, 24]], [0.9, 0.8], [0, 0]), pair, [0, 0], 0.3) == (2, 0)
    assert count_boxes(_det([[0, 0, 20, 20], [0, 0, 20, 22], [0, 0, 20, 23]], [0.9, 0.8, 0.7], [0, 0, 0]),
                       pair, [0, 0], 0.3) == (3, 1)
    assert count_boxes(_det([], [], []), pair, [0, 0], 0.3) == (0, 0)
    assert count_boxes(det, np.zeros((0, 4), np.float32), [], 0.3) == (7, 0)


def test_figures_json_has_the_nms_redundancy_keys(rendered, setup):
    _, _, summary = rendered
    data = json.loads(setup["ann"].read_text())
    red = summary["nms_redundancy"]
    assert set(red) == {"score_thr", "match_iou", "nms_ious", "images", "baseline", "ld"}
    assert red["images"] == len(data["images"]) == 6          # the whole val split, not the figures' images
    assert red["score_thr"] == summary["score_thr"] and red["nms_ious"] == [0.6, 0.95]
    for role in ("baseline", "ld"):
        vals = red[role]
        assert set(vals) == {"boxes_per_image_nms0.6", "boxes_per_image_nms0.95", "surplus_per_image",
                             "redundant_per_image_nms0.6"}
        assert vals["boxes_per_image_nms0.95"] >= vals["boxes_per_image_nms0.6"] > 0
        assert vals["surplus_per_image"] == pytest.approx(vals["boxes_per_image_nms0.95"]
                                                          - vals["boxes_per_image_nms0.6"], abs=1e-3)
        assert 0 <= vals["redundant_per_image_nms0.6"] <= vals["boxes_per_image_nms0.6"]
    assert {"val_inference_s", "redundancy_s", "per_image_s"} <= set(summary["timings"])
    assert "validation images" in summary["figure2"]["caption"]


def test_nms_095_keeps_at_least_as_many_boxes_as_06(rendered):
    _, _, summary = rendered
    panels = summary["figure2"]["panels"]
    assert len(panels) == 2 * 2 * 2
    by_key = {(p["model"], p["image_id"], p["nms_iou"]): p["drawn"] for p in panels}
    pairs = [(by_key[(m, i, 0.6)], by_key[(m, i, 0.95)]) for m in ("GFocal", "LD")
             for i in summary["figure2"]["image_ids"]]
    assert all(lo > 0 for lo, _ in pairs)
    assert all(hi >= lo for lo, hi in pairs)
    assert any(hi > lo for lo, hi in pairs)


def test_detect_overrides_nms_and_restores_it(setup):
    from ld_core.report.detections import detect, load_model

    cfg_path, ckpt = setup["files"]["ld"]
    model = load_model(cfg_path, ckpt)
    assert type(model).__name__ == "GFL" and type(model.bbox_head).__name__ == "GFLHead"
    more = []
    for image in sorted((setup["img_dir"] / "val").glob("*.jpg")):
        default = detect(model, image)
        loose = detect(model, image, nms_iou=0.95)
        again = detect(model, image)
        assert model.bbox_head.test_cfg["nms"]["iou_threshold"] == 0.6
        n = len(default["scores"])
        assert default["bboxes"].shape == (n, 4) and default["labels"].shape == (n,) and n > 0
        assert len(loose["scores"]) >= n
        more.append(len(loose["scores"]) > n)
        assert (again["bboxes"] == default["bboxes"]).all()
        assert (default["scores"][:-1] >= default["scores"][1:]).all()
    assert any(more)
    assert (default["bboxes"][:, 2:] <= SIZE + 1e-3).all()        # original image coordinates


def test_missing_checkpoint_is_one_line_error_and_writes_nothing(setup):
    from ld_core.errors import ConfigError
    from ld_core.report.figures import make_figures

    out = setup["tmp"] / "missing"
    gone = setup["tmp"] / "ld" / "nope.pth"
    with pytest.raises(ConfigError) as info:
        make_figures(*_args(setup, out, ld_checkpoint=gone))
    message = str(info.value)
    assert "\n" not in message and str(gone) in message
    assert not out.exists() or not any(out.iterdir())


def test_missing_annotation_is_data_error(setup):
    from ld_core.errors import DataError
    from ld_core.report.figures import make_figures

    args = _args(setup, setup["tmp"] / "noann")
    args[4] = setup["tmp"] / "none.json"
    with pytest.raises(DataError, match="none.json"):
        make_figures(*args)


def test_checkpoint_not_fitting_config_is_one_line_error(setup, tmp_path):
    from mmengine.config import Config

    from ld_core.errors import ConfigError
    from ld_core.report.detections import load_model

    cfg = _full_cfg(_model_cfg(num_classes=7), ["c"] * 7)
    path = tmp_path / "config.py"
    Config(cfg).dump(str(path))
    ckpt = setup["files"]["baseline"][1]
    with pytest.raises(ConfigError) as info:
        load_model(path, ckpt)
    assert "\n" not in str(info.value) and str(ckpt) in str(info.value)


def test_failure_while_saving_leaves_no_partial_files(setup, monkeypatch):
    from matplotlib.figure import Figure

    from ld_core.report.figures import make_figures

    out = setup["tmp"] / "broken"
    real, calls = Figure.savefig, []

    def flaky(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", flaky)
    with pytest.raises(OSError, match="disk full"):
        make_figures(*_args(setup, out), num_images_fig1=1, num_images_fig2=1, score_thr=0.5)
    assert not out.exists() or list(out.iterdir()) == []  # nothing partial: rendering fails before any write
