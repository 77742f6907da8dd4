"""Qualitative figures: honest image selection, NMS override, atomic output, one-line input errors.

Two tiny random-weight GFL models (the "LD" one written as a distiller config whose teacher does not
exist, so it only loads through ``student_only``) on a 6-image synthetic val split.
"""
from __future__ import annotations

import copy
import json

import pytest

from conftest import tiny_gfl_cfg

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
    eligible = sorted(img["id"] for img in data["images"] if counts.get(img["id"], 0) >= 2)
    assert len(eligible) >= 2, "fixture dataset must have two val images with >= 2 objects"
    assert summary["figure1"]["image_ids"] == eligible[:2]
    assert summary["figure2"]["image_ids"] == eligible[:2]
    panels = summary["figure1"]["panels"]
    assert [(p["image_id"], p["model"]) for p in panels] == [(i, m) for i in eligible[:2] for m in ("GFocal", "LD")]
    assert "0.3" not in summary["figure1"]["caption"] and "score >= 0" in summary["figure1"]["caption"]


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
    from ld_core.report.figures import detect, load_model

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
    from ld_core.report.figures import load_model

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
