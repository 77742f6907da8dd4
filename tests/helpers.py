"""Shared test helpers (imported as ``helpers``): the repository root and the Snakemake command line, tiny mmdet
model configs and batches for fast CPU tests, small fake COCO/VOC trees, YAML edits."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
# `snakemake` on the repository's Snakefile with its workflow profile (as typed at the root); add --directory
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"),
             "--workflow-profile", str(ROOT / "workflow" / "profiles" / "default")]


def tiny_gfl_cfg(depth: int = 18, head_type: str = "GFLHead", num_classes: int = 3, reg_max: int = 16,
                 strides=(8, 16, 32, 64, 128)) -> dict:
    """A small GFL detector config (random init, 64-px inputs)."""
    base = 8
    fpn_in = [64, 128, 256, 512] if depth < 50 else [256, 512, 1024, 2048]
    return dict(
        type="GFL",
        data_preprocessor=dict(type="DetDataPreprocessor", mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_size_divisor=32),
        backbone=dict(type="ResNet", depth=depth, num_stages=4, out_indices=(0, 1, 2, 3), base_channels=base,
                      frozen_stages=-1, norm_cfg=dict(type="BN", requires_grad=True), norm_eval=False),
        neck=dict(type="FPN", in_channels=[c * base // 64 for c in fpn_in], out_channels=16, start_level=1,
                  add_extra_convs="on_output", num_outs=5),
        bbox_head=dict(type=head_type, num_classes=num_classes, in_channels=16, stacked_convs=1, feat_channels=16,
                       norm_cfg=dict(type="GN", num_groups=4, requires_grad=True),
                       anchor_generator=dict(type="AnchorGenerator", ratios=[1.0], octave_base_scale=8,
                                             scales_per_octave=1, strides=list(strides)),
                       loss_cls=dict(type="QualityFocalLoss", use_sigmoid=True, beta=2.0, loss_weight=1.0),
                       loss_dfl=dict(type="DistributionFocalLoss", loss_weight=0.25), reg_max=reg_max,
                       loss_bbox=dict(type="GIoULoss", loss_weight=2.0)),
        train_cfg=dict(assigner=dict(type="ATSSAssigner", topk=9), allowed_border=-1, pos_weight=-1, debug=False),
        test_cfg=dict(nms_pre=100, min_bbox_size=0, score_thr=0.05, nms=dict(type="nms", iou_threshold=0.6),
                      max_per_img=20))


def make_batch(num_images: int = 2, size: int = 64, seed: int = 0):
    """Random images with a few GT boxes each, as mmdet data samples (already preprocessed-sized)."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    g = torch.Generator().manual_seed(seed)
    inputs = torch.randn(num_images, 3, size, size, generator=g)
    samples = []
    for _ in range(num_images):
        n = 3
        xy = torch.rand(n, 2, generator=g) * size * 0.5
        wh = 6 + torch.rand(n, 2, generator=g) * size * 0.45
        boxes = torch.cat([xy, (xy + wh).clamp(max=size - 1)], dim=1)
        sample = DetDataSample(metainfo=dict(img_shape=(size, size), pad_shape=(size, size), ori_shape=(size, size),
                                             scale_factor=(1.0, 1.0), batch_input_shape=(size, size)))
        sample.gt_instances = InstanceData(bboxes=boxes, labels=torch.randint(0, 3, (n,), generator=g))
        samples.append(sample)
    return inputs, samples


# tiny widths with the embedded profile's head overrides (anchors at half the paper's scale)
EMBEDDED_HEADS = yaml.safe_load((ROOT / "configs/scales/embedded.yaml").read_text())["model"]["heads"]
TINY_PROFILE = dict(neck_channels=16, head_feat_channels=16, head_stacked_convs=1, head_norm_groups=4,
                    heads=EMBEDDED_HEADS)


def tiny_detector_cfg(detector: str = "gfl", *, distribution: bool = True, distill=None, depth: int = 18,
                      num_classes: int = 3, **head_overrides) -> dict:
    """A tiny config of any Table 3 detector (``ld_core.config.detectors.detector_parts`` on a tiny profile)."""
    from ld_core.config.detectors import detector_parts

    parts = detector_parts(detector, num_classes, TINY_PROFILE, distribution=distribution, distill=distill)
    cfg = tiny_gfl_cfg(depth=depth, num_classes=num_classes)
    cfg.update(type=parts["type"], bbox_head=parts["bbox_head"], train_cfg=parts["train_cfg"])
    cfg["bbox_head"].update(head_overrides)
    cfg["neck"].update(parts["neck"])
    return cfg


def edit_yaml(path: Path, mutate) -> Path:
    """Apply ``mutate`` to the data of a YAML file and write it back."""
    data = yaml.safe_load(path.read_text())
    mutate(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def jpeg(path: Path, width: int, height: int) -> None:
    """A real JPEG of the given size (the check decodes every image)."""
    from PIL import Image

    Image.new("RGB", (width, height), (90, 120, 150)).save(path, format="JPEG")


def make_coco(root: Path, n_train=3, n_val=2) -> Path:
    """A small COCO tree (train2017, val2017, annotations/instances_*.json), one box per image."""
    (root / "annotations").mkdir(parents=True)
    for split, n in (("train2017", n_train), ("val2017", n_val)):
        (root / split).mkdir()
        images = [dict(id=i + 1, file_name=f"{i + 1:012d}.jpg", width=64, height=48) for i in range(n)]
        for img in images:
            jpeg(root / split / img["file_name"], 64, 48)
        anns = [dict(id=i + 1, image_id=i + 1, category_id=1, bbox=[1, 2, 10, 12], area=120, iscrowd=0)
                for i in range(n)]
        data = dict(images=images, annotations=anns, categories=[dict(id=1, name="person")])
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(data))
    return root


VOC_XML = ("<annotation><filename>{stem}.jpg</filename><size><width>100</width><height>80</height>"
           "<depth>3</depth></size><object><name>dog</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>50</xmax>"
           "<ymax>60</ymax></bndbox></object></annotation>")


def make_voc(devkit: Path, splits=(("VOC2007", "trainval", 2), ("VOC2012", "trainval", 1), ("VOC2007", "test", 2))):
    """A small VOCdevkit (split files, XML annotations, JPEGs), one box per image."""
    for year, split, n in splits:
        root = devkit / year
        for sub in ("ImageSets/Main", "Annotations", "JPEGImages"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        stems = [f"{year[-4:]}{split[:2]}{i:04d}" for i in range(n)]
        (root / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{s}\n" for s in stems))
        for stem in stems:
            (root / "Annotations" / f"{stem}.xml").write_text(VOC_XML.format(stem=stem))
            jpeg(root / "JPEGImages" / f"{stem}.jpg", 100, 80)
    return devkit


def resolved_config(tmp_path: Path, scale: str = "tiny", run: str = "gfl_r18", extra=()) -> Path:
    """The resolved mmdet config of `run` (seed 0) at `scale`; the tiny scale's data is generated too."""
    from ld_core.cli import main

    results = tmp_path / "results"
    scale_path = ROOT / "configs" / "scales" / f"{scale}.yaml"
    synth = yaml.safe_load(scale_path.read_text())["data"].get("synthetic")
    if synth:
        args = [f"--{k.replace('_', '-')}={v}" for k, v in synth.items()]
        assert main(["data-synth", "--out", str(results / "data" / "synthetic"), *args]) == 0
    out = results / "runs" / run / "seed0" / "config.py"
    assert main(["resolve", "--matrix", str(ROOT / "configs" / "experiments.yaml"), "--scale", str(scale_path),
                 "--results", str(results), "--run", run, "--seed", "0", "--out", str(out), *extra]) == 0
    return out
