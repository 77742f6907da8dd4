"""Resolve one (run, seed) of the matrix under a scale profile into a complete, runnable mmdet config.

The written ``config.py`` imports ``ld_core.models`` through mmengine's ``custom_imports``, so plain
``mmdet tools/train.py config.py`` and ``tools/test.py config.py checkpoint.pth`` run it as well.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Optional, Sequence

from .errors import ConfigError
from .matrix import Run

IMG_NORM = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True)
FPN_IN = {18: [64, 128, 256, 512], 34: [64, 128, 256, 512], 50: [256, 512, 1024, 2048], 101: [256, 512, 1024, 2048]}


def dataset_layout(scale: dict, results_dir: str | Path, data_root: Optional[str]) -> dict:
    """Absolute paths of the train/val annotation files and image folders for the profile's dataset."""
    kind = scale["data"]["kind"]
    if kind == "synthetic":
        root = Path(results_dir).resolve() / "data" / "synthetic" / "coco"
        return dict(root=str(root), train_ann="annotations/instances_train.json", train_img="images/",
                    val_ann="annotations/instances_val.json", val_img="images/")
    if kind == "coco":
        if not data_root:
            raise ConfigError(f"{scale['path']}: the '{scale['name']}' scale needs `data_root` (the COCO folder) "
                              "in the pipeline config, e.g. --config data_root=/data/coco")
        return dict(root=str(Path(data_root).resolve()), train_ann="annotations/instances_train2017.json",
                    train_img="train2017/", val_ann="annotations/instances_val2017.json", val_img="val2017/")
    raise ConfigError(f"{scale['path']}: unknown data kind '{kind}'")


def _backbone(run: Run, scale: dict, pretrained_dir: Optional[str]) -> dict:
    m = scale["model"]
    cfg = dict(type="ResNet", depth=run.depth, num_stages=4, out_indices=(0, 1, 2, 3),
               base_channels=m["backbone_base_channels"], norm_cfg=dict(type="BN", requires_grad=True),
               style="pytorch")
    if m["pretrained"]:
        ckpt = (str(Path(pretrained_dir) / f"resnet{run.depth}.pth") if pretrained_dir
                else f"torchvision://resnet{run.depth}")
        cfg.update(frozen_stages=1, norm_eval=True, init_cfg=dict(type="Pretrained", checkpoint=ckpt))
    else:
        cfg.update(frozen_stages=-1, norm_eval=False)
    return cfg


def _gfl_head(num_classes: int, scale: dict, run: Run) -> dict:
    m = scale["model"]
    head = dict(
        type="GFLHead", num_classes=num_classes, in_channels=m["neck_channels"],
        stacked_convs=m["head_stacked_convs"], feat_channels=m["head_feat_channels"],
        norm_cfg=dict(type="GN", num_groups=m["head_norm_groups"], requires_grad=True),
        anchor_generator=dict(type="AnchorGenerator", ratios=[1.0], octave_base_scale=m.get("anchor_scale", 8),
                              scales_per_octave=1,
                              strides=[8, 16, 32, 64, 128]),
        loss_cls=dict(type="QualityFocalLoss", use_sigmoid=True, beta=2.0, loss_weight=1.0),
        loss_dfl=dict(type="DistributionFocalLoss", loss_weight=0.25), reg_max=16,
        loss_bbox=dict(type="GIoULoss", loss_weight=2.0))
    if run.teacher is not None:
        d = run.distill
        head["type"] = "LDGFLHead"
        head["loss_ld"] = dict(type="LocalizationDistillationLoss", loss_weight=d.get("ld_weight", 0.25),
                               T=d.get("temperature", 10), true_kl=d.get("true_kl", False))
        head["ld_normalize"] = d.get("ld_normalize", "reference")
        if not d.get("gt_box_losses", True):  # Individual LD: L_reg and L_DFL disabled (weight 0)
            head["loss_bbox"]["loss_weight"] = 0.0
            head["loss_dfl"]["loss_weight"] = 0.0
    return head


def _schedule(run: Run, scale: dict) -> tuple[dict, list]:
    if run.schedule not in scale["schedules"]:
        raise ConfigError(f"{scale['path']}: schedule '{run.schedule}' of run '{run.id}' is not defined "
                          f"(defined: {', '.join(scale['schedules'])})")
    sched, t = scale["schedules"][run.schedule], scale["train"]
    warmup = dict(type="LinearLR", start_factor=t["warmup_ratio"], by_epoch=False, begin=0, end=t["warmup_iters"])
    if t["loop"] == "iter":
        loop = dict(type="IterBasedTrainLoop", max_iters=sched["iters"], val_interval=sched["iters"] + 1)
        step = dict(type="MultiStepLR", by_epoch=False, begin=0, end=sched["iters"],
                    milestones=list(sched["milestones"]), gamma=0.1)
    else:
        loop = dict(type="EpochBasedTrainLoop", max_epochs=sched["epochs"], val_interval=sched["epochs"] + 1)
        step = dict(type="MultiStepLR", by_epoch=True, begin=0, end=sched["epochs"],
                    milestones=list(sched["milestones"]), gamma=0.1)
    return loop, [warmup, step]


def _pipelines(scale: dict) -> tuple[list, list]:
    size = tuple(scale["input_size"])
    train = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", with_bbox=True),
             dict(type="Resize", scale=size, keep_ratio=True), dict(type="RandomFlip", prob=0.5),
             dict(type="PackDetInputs")]
    test = [dict(type="LoadImageFromFile"), dict(type="Resize", scale=size, keep_ratio=True),
            dict(type="LoadAnnotations", with_bbox=True),
            dict(type="PackDetInputs", meta_keys=("img_id", "img_path", "ori_shape", "img_shape", "scale_factor"))]
    return train, test


def build_run_config(run: Run, seed: int, scale: dict, *, results_dir: str | Path, classes: Optional[Sequence[str]],
                     data_root: Optional[str] = None, pretrained_dir: Optional[str] = None,
                     teacher_config: Optional[str] = None, teacher_ckpt: Optional[str] = None) -> dict:
    """The mmdet config (as a dict) of one run and seed."""
    if (run.teacher is None) != (teacher_config is None):
        raise ConfigError(f"run '{run.id}': teacher config must be given exactly when the run has a teacher")
    layout = dataset_layout(scale, results_dir, data_root)
    num_classes = len(classes) if classes else 80
    metainfo = dict(classes=tuple(classes)) if classes else None
    t, te = scale["train"], scale["test"]
    loop, schedulers = _schedule(run, scale)
    train_pipeline, test_pipeline = _pipelines(scale)

    model = dict(
        type="GFL",
        data_preprocessor=dict(type="DetDataPreprocessor", pad_size_divisor=32, **IMG_NORM),
        backbone=_backbone(run, scale, pretrained_dir),
        neck=dict(type="FPN", in_channels=[c * scale["model"]["backbone_base_channels"] // 64 for c in FPN_IN[run.depth]],
                  out_channels=scale["model"]["neck_channels"], start_level=1, add_extra_convs="on_output", num_outs=5),
        bbox_head=_gfl_head(num_classes, scale, run),
        train_cfg=dict(assigner=dict(type="ATSSAssigner", topk=9), allowed_border=-1, pos_weight=-1, debug=False),
        test_cfg=dict(nms_pre=te["nms_pre"], min_bbox_size=0, score_thr=te["score_thr"],
                      nms=dict(type="nms", iou_threshold=te["nms_iou"]), max_per_img=te["max_per_img"]))
    if run.teacher is not None:
        model.update(type="LocalizationDistiller", teacher_config=str(teacher_config),
                     teacher_ckpt=None if teacher_ckpt is None else str(teacher_ckpt))

    def dataset(ann, img, pipeline, test_mode):
        ds = dict(type="CocoDataset", data_root=layout["root"], ann_file=ann, data_prefix=dict(img=img),
                  pipeline=pipeline, test_mode=test_mode)
        if not test_mode:
            ds["filter_cfg"] = dict(filter_empty_gt=True, min_size=1)
        if metainfo:
            ds["metainfo"] = metainfo
        return ds

    sampler = dict(type="InfiniteSampler", shuffle=True) if t["loop"] == "iter" else dict(type="DefaultSampler", shuffle=True)
    workers = t["num_workers"]
    cfg = dict(
        custom_imports=dict(imports=["ld_core.models"], allow_failed_imports=False),
        default_scope="mmdet",
        model=model,
        train_dataloader=dict(batch_size=t["batch_size"], num_workers=workers, persistent_workers=workers > 0,
                              sampler=sampler, batch_sampler=dict(type="AspectRatioBatchSampler"),
                              dataset=dataset(layout["train_ann"], layout["train_img"], train_pipeline, False)),
        test_dataloader=dict(batch_size=te["batch_size"], num_workers=workers, persistent_workers=workers > 0,
                             drop_last=False, sampler=dict(type="DefaultSampler", shuffle=False),
                             dataset=dataset(layout["val_ann"], layout["val_img"], test_pipeline, True)),
        test_evaluator=dict(type="CocoMetric", ann_file=str(Path(layout["root"]) / layout["val_ann"]),
                            metric="bbox", format_only=False),
        test_cfg=dict(type="TestLoop"),
        train_cfg=loop,
        optim_wrapper=dict(type="OptimWrapper",
                           optimizer=dict(t["optimizer"]),
                           **({"clip_grad": dict(max_norm=t["grad_clip"], norm_type=2)} if t.get("grad_clip") else {})),
        param_scheduler=schedulers,
        auto_scale_lr=dict(enable=bool(t["auto_scale_lr"]), base_batch_size=16),
        default_hooks=dict(
            timer=dict(type="IterTimerHook"),
            logger=dict(type="LoggerHook", interval=t["log_interval"]),
            param_scheduler=dict(type="ParamSchedulerHook"),
            checkpoint=dict(type="CheckpointHook", by_epoch=t["loop"] == "epoch",
                            interval=1 if t["loop"] == "epoch" else loop["max_iters"], max_keep_ckpts=2),
            sampler_seed=dict(type="DistSamplerSeedHook"),
            visualization=dict(type="DetVisualizationHook")),
        env_cfg=dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method="fork", opencv_num_threads=0),
                     dist_cfg=dict(backend="nccl")),
        vis_backends=[dict(type="LocalVisBackend")],
        visualizer=dict(type="DetLocalVisualizer", vis_backends=[dict(type="LocalVisBackend")], name="visualizer"),
        log_processor=dict(type="LogProcessor", window_size=t["log_interval"], by_epoch=t["loop"] == "epoch"),
        log_level="INFO",
        load_from=None,
        resume=False,
        randomness=dict(seed=int(seed), deterministic=False),
        ld_repro=dict(run=run.id, seed=int(seed), scale=scale["name"], backbone=run.backbone,
                      teacher=run.teacher, distill=dict(run.distill)),
    )
    return cfg


def student_only(cfg: dict) -> dict:
    """The plain-mmdet student of a (possibly distilled) config: GFL + GFLHead, no teacher loaded."""
    cfg = copy.deepcopy(cfg)
    model = cfg["model"]
    if model.get("type") == "LocalizationDistiller":
        model["type"] = "GFL"
        model.pop("teacher_config", None)
        model.pop("teacher_ckpt", None)
    head = model["bbox_head"]
    if head.get("type") == "LDGFLHead":
        head["type"] = "GFLHead"
        head.pop("loss_ld", None)
        head.pop("ld_normalize", None)
    return cfg
