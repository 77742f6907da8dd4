"""The generated inputs of ``make rehearse`` (:mod:`ld_core.commands.rehearsal_data`): mini COCO 2017 and VOC
07+12 in their exact layouts, random ImageNet backbones and a released-format teacher of a given model."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from mmdet.datasets import CocoDataset, VOCDataset
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from PIL import Image

from ..models.fitting import build_model

COCO_MISSING_IDS = {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}
COCO_IDS = [i for i in range(1, 91) if i not in COCO_MISSING_IDS]
SIZES = [(640, 480), (480, 640), (1333, 800), (500, 375), (427, 640), (800, 1333)]  # (w, h)
BACKBONES = {"resnet18": dict(depth=18), "resnet34": dict(depth=34), "resnet50": dict(depth=50),
             "resnet101": dict(depth=101), "resnext101_32x4d": dict(depth=101, groups=32, base_width=4)}


def _jpeg(path: Path, size, rng: np.random.Generator, boxes) -> None:
    w, h = size
    pixels = (rng.random((h, w, 3)) * 60 + 90).astype(np.uint8)
    for x, y, bw, bh in boxes:
        pixels[int(y):int(y + bh), int(x):int(x + bw)] = rng.integers(0, 255, 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format="JPEG", quality=80)


def _boxes(rng: np.random.Generator, size, n: int) -> list:
    w, h = size
    out = []
    for _ in range(n):
        bw, bh = rng.uniform(0.1, 0.5) * w, rng.uniform(0.1, 0.5) * h
        x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
        out.append([round(float(v), 2) for v in (x, y, bw, bh)])
    return out


def mini_coco(root: Path, n_train: int, n_val: int, seed: int = 0) -> dict:
    names = CocoDataset.METAINFO["classes"]
    categories = [dict(id=i, name=n, supercategory="thing") for i, n in zip(COCO_IDS, names)]
    rng = np.random.default_rng(seed)
    image_id, ann_id = 100, 1
    for split, n in (("train2017", n_train), ("val2017", n_val)):
        images, annotations = [], []
        for k in range(n):
            size = SIZES[k % len(SIZES)]
            image_id += 7  # COCO's ids are not contiguous either
            boxes = [] if k == n - 1 else _boxes(rng, size, 1 + k % 3)  # the last image: no annotation
            images.append(dict(id=image_id, file_name=f"{image_id:012d}.jpg", width=size[0], height=size[1]))
            for j, box in enumerate(boxes):
                annotations.append(dict(id=ann_id, image_id=image_id, category_id=COCO_IDS[(k * 7 + j * 13) % 80],
                                        bbox=box, area=round(box[2] * box[3], 2), iscrowd=int(j == 2),
                                        segmentation=[[box[0], box[1], box[0] + box[2], box[1], box[0] + box[2],
                                                       box[1] + box[3]]]))
                ann_id += 1
            _jpeg(root / split / images[-1]["file_name"], size, rng, boxes)
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        (root / "annotations" / f"instances_{split}.json").write_text(
            json.dumps(dict(info=dict(description="ld-repro rehearsal mini COCO 2017"), images=images,
                            annotations=annotations, categories=categories)))
    return {"coco_train": n_train, "coco_val": n_val}


def _voc_xml(stem: str, size, objects) -> str:
    w, h = size
    objs = "".join(
        f"<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>{difficult}"
        f"</difficult><bndbox><xmin>{int(x) + 1}</xmin><ymin>{int(y) + 1}</ymin><xmax>{int(x + bw)}</xmax>"
        f"<ymax>{int(y + bh)}</ymax></bndbox></object>" for name, (x, y, bw, bh), difficult in objects)
    return (f"<annotation><folder>VOC</folder><filename>{stem}.jpg</filename><size><width>{w}</width>"
            f"<height>{h}</height><depth>3</depth></size><segmented>0</segmented>{objs}</annotation>")


def mini_voc(devkit: Path, n: dict, seed: int = 1) -> dict:
    names = VOCDataset.METAINFO["classes"]
    rng = np.random.default_rng(seed)
    voc_sizes = [(500, 375), (353, 500), (500, 333), (375, 500)]
    for (year, split), count in n.items():
        root = devkit / year
        stems = [f"{year[3:]}_{split[:2]}{k:04d}" for k in range(count)]
        for k, stem in enumerate(stems):
            size = voc_sizes[k % len(voc_sizes)]
            boxes = _boxes(rng, size, 1 + k % 3)
            objects = [(names[(k * 3 + j * 5) % 20], box, int(j == 1)) for j, box in enumerate(boxes)]
            (root / "Annotations").mkdir(parents=True, exist_ok=True)
            (root / "Annotations" / f"{stem}.xml").write_text(_voc_xml(stem, size, objects))
            _jpeg(root / "JPEGImages" / f"{stem}.jpg", size, rng, boxes)
        (root / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
        (root / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(s + "\n" for s in stems))
    return {"voc_trainval": n[("VOC2007", "trainval")] + n[("VOC2012", "trainval")],
            "voc_test": n[("VOC2007", "test")]}


def _random_state(model, seed: int) -> dict:
    torch.manual_seed(seed)
    state = {}
    for name, value in model.state_dict().items():
        if value.is_floating_point():
            value = torch.rand_like(value) + 0.5 if name.endswith("running_var") else torch.randn_like(value) * 0.02
        state[name] = value.clone()
    return state


def imagenet_files(folder: Path) -> None:
    """Random ImageNet backbones, torchvision's key names (mmdet's ResNet/ResNeXt use the same), with fc."""
    register_all_modules()
    folder.mkdir(parents=True, exist_ok=True)
    for index, (name, arch) in enumerate(BACKBONES.items()):
        cfg = dict(type="ResNeXt" if "groups" in arch else "ResNet", num_stages=4, out_indices=(0, 1, 2, 3),
                   style="pytorch", **arch)
        state = _random_state(MODELS.build(cfg), index)
        state["fc.weight"], state["fc.bias"] = torch.zeros(1000, 2048 if arch["depth"] >= 50 else 512), torch.zeros(1000)
        torch.save(state, folder / f"{name}.pth")


def released_teacher(path: Path, model_cfg: dict) -> None:
    """A model-zoo file (mmcv 1.x format) of the model ``model_cfg``, random weights."""
    state = _random_state(build_model(model_cfg, device="cpu"), 7)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(dict(meta=dict(mmcv_version="1.3.8", mmdet_version="2.14.0", CLASSES=CocoDataset.METAINFO["classes"],
                              epoch=24, iter=175920), state_dict=state), path)
