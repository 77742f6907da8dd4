"""Resolve one (run, seed) of the matrix under a scale profile into a complete, runnable mmdet config.

The written ``config.py`` imports ``ld_core.models`` through mmengine's ``custom_imports``, so plain
``mmdet tools/train.py config.py`` and ``tools/test.py config.py checkpoint.pth`` run it as well.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence

from .detectors import detector_parts
from ..errors import ConfigError
from .matrix import Run

IMG_NORM = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True)
FPN_IN = {18: [64, 128, 256, 512], 34: [64, 128, 256, 512], 50: [256, 512, 1024, 2048], 101: [256, 512, 1024, 2048]}


VOC_IOU_THRS = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]
MMDET_NUM_CLASSES = {"coco": 80, "voc": 20}  # classes=None: mmdet's CocoDataset / VOCDataset classes


def dataset_classes(scale: dict, user=None):
    """Class names of a run's dataset: the user's, the synthetic world's, or None (mmdet's COCO / VOC)."""
    if user is not None:
        return tuple(user.classes)
    if scale["data"]["kind"] == "synthetic":
        from ..data.synthetic import CLASSES  # light parse: numpy (data.synthetic) only when asked for

        return CLASSES
    return None


def voc_layout(scale: dict, results_dir: str | Path, voc_root: Optional[str], user=None) -> dict:
    """VOCdevkit root and the (folder, split) lists of the train and test sets: the user's VOC-format dataset
    (a :class:`ld_core.data.user_dataset.UserDataset`), the synthetic one, or VOC 07+12 in ``voc_root``."""
    if user is not None:
        return dict(root=user.root, train=list(user.train), test=list(user.test))
    if scale["data"]["kind"] == "synthetic":
        root = Path(results_dir).resolve() / "data" / "synthetic" / "VOCdevkit"
        return dict(root=str(root), train=[("VOC2007", "trainval")], test=[("VOC2007", "test")])
    if not voc_root:
        raise ConfigError(f"{scale['path']}: VOC runs at the '{scale['name']}' scale need `voc_root` (the VOCdevkit "
                          "folder holding VOC2007 and VOC2012) in the pipeline config, e.g. --config voc_root=/data/VOCdevkit")
    return dict(root=str(Path(voc_root).resolve()), train=[("VOC2007", "trainval"), ("VOC2012", "trainval")],
                test=[("VOC2007", "test")])


def dataset_layout(scale: dict, results_dir: str | Path, data_root: Optional[str], user=None) -> dict:
    """Root and (root-relative) train/val annotation files and image folders of a COCO-style dataset: the
    user's, the synthetic one, or COCO 2017 in ``data_root``."""
    if user is not None:
        rel = lambda p: os.path.relpath(p, user.root)  # noqa: E731
        return dict(root=user.root, train_ann=rel(user.train[0]), train_img=rel(user.train[1]) + "/",
                    val_ann=rel(user.test[0]), val_img=rel(user.test[1]) + "/")
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


def pretrained_name(run: Run) -> str:
    """File stem of the ImageNet weights of a backbone: resnet50, resnext101_32x4d (mmdet's open-mmlab names)."""
    arch = run.arch
    return f"resnext{arch['depth']}_32x4d" if arch.get("groups") else f"resnet{arch['depth']}"


def _backbone(run: Run, scale: dict, pretrained_dir: Optional[str]) -> dict:
    m = scale["model"]
    arch, base = run.arch, m["backbone_base_channels"]
    cfg = dict(type="ResNet", depth=arch["depth"], num_stages=4, out_indices=(0, 1, 2, 3),
               base_channels=base, norm_cfg=dict(type="BN", requires_grad=True), style="pytorch")
    if arch.get("groups"):  # ResNeXt: cardinality scales with the width so that width/planes stays 2 as in 32x4d
        cfg.update(type="ResNeXt", groups=max(1, arch["groups"] * base // 64), base_width=arch["base_width"])
    if arch.get("dcn_stages"):
        dcn_type = {"mmcv": "DCN", "torch": "DCNTorch"}[m.get("dcn_impl", "mmcv")]  # see ld_core/ops/deform_conv.py
        cfg.update(dcn=dict(type=dcn_type, deform_groups=1, fallback_on_stride=False),
                   stage_with_dcn=tuple(arch["dcn_stages"]))
    if m["pretrained"]:
        name = pretrained_name(run)
        torchvision = {"resnet18", "resnet34", "resnet50", "resnet101"}
        ckpt = (str(Path(pretrained_dir) / f"{name}.pth") if pretrained_dir
                else (f"torchvision://{name}" if name in torchvision else f"open-mmlab://{name}"))
        cfg.update(frozen_stages=1, norm_eval=True, init_cfg=dict(type="Pretrained", checkpoint=ckpt))
    else:
        cfg.update(frozen_stages=-1, norm_eval=False)
    return cfg


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


def _train_resize(scale: dict, schedule: Optional[str] = None) -> dict:
    """Resize of the training pipeline: the profile's ``input_size``, or the schedule's ``multiscale`` range
    (mmdet's ``RandomResize`` between the two (w, h) scales, keep ratio: the released ms-2x recipe, 480-800)."""
    multiscale = (scale["schedules"].get(schedule) or {}).get("multiscale") if schedule else None
    if multiscale:
        return dict(type="RandomResize", scale=[tuple(s) for s in multiscale], keep_ratio=True)
    return dict(type="Resize", scale=tuple(scale["input_size"]), keep_ratio=True)


def _pipelines(scale: dict, schedule: Optional[str] = None) -> tuple[list, list]:
    size = tuple(scale["input_size"])
    train = [dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", with_bbox=True),
             _train_resize(scale, schedule), dict(type="RandomFlip", prob=0.5),
             dict(type="PackDetInputs")]
    test = [dict(type="LoadImageFromFile"), dict(type="Resize", scale=size, keep_ratio=True),
            dict(type="LoadAnnotations", with_bbox=True),
            dict(type="PackDetInputs", meta_keys=("img_id", "img_path", "ori_shape", "img_shape", "scale_factor"))]
    return train, test


def _coco_datasets(scale, results_dir, data_root, user, metainfo, train_pipeline, test_pipeline):
    """(train dataset, test dataset, evaluator) configs of a COCO-style run."""
    layout = dataset_layout(scale, results_dir, data_root, user)

    def dataset(ann, img, pipeline, test_mode):
        ds = dict(type="CocoDataset", data_root=layout["root"], ann_file=ann, data_prefix=dict(img=img),
                  pipeline=pipeline, test_mode=test_mode)
        if not test_mode:
            ds["filter_cfg"] = dict(filter_empty_gt=True, min_size=1)
        if metainfo:
            ds["metainfo"] = metainfo
        return ds

    evaluator = dict(type="CocoMetric", ann_file=str(Path(layout["root"]) / layout["val_ann"]), metric="bbox",
                     format_only=False)
    return (dataset(layout["train_ann"], layout["train_img"], train_pipeline, False),
            dataset(layout["val_ann"], layout["val_img"], test_pipeline, True), evaluator)


def _voc_datasets(scale, results_dir, voc_root, user, metainfo, run, train_pipeline, test_pipeline):
    """(train dataset, test dataset, evaluator) configs of a VOC run: mmdet's VOCDataset and VOCMetric.

    Training concatenates the layout's trainval sets (07+12 at paper scale) and repeats them
    ``dataset_repeat`` times per epoch when the schedule says so (the authors' VOC config: 3).
    The metric is the VOC07 mAP at IoU 0.50:0.05:0.95 (11-point by default, ``test.voc_eval_mode``).
    """
    layout = voc_layout(scale, results_dir, voc_root, user)

    def dataset(year, split, pipeline, test_mode):
        ds = dict(type="VOCDataset", data_root=layout["root"], ann_file=f"{year}/ImageSets/Main/{split}.txt",
                  data_prefix=dict(sub_data_root=f"{year}/"), pipeline=pipeline, test_mode=test_mode)
        if not test_mode:
            ds["filter_cfg"] = dict(filter_empty_gt=True, min_size=1, bbox_min_size=1)
        if metainfo:
            ds["metainfo"] = metainfo
        return ds

    parts = [dataset(y, sp, train_pipeline, False) for y, sp in layout["train"]]
    train = parts[0] if len(parts) == 1 else dict(type="ConcatDataset", datasets=parts)
    repeat = scale["schedules"][run.schedule].get("dataset_repeat", 1)
    if repeat > 1:
        train = dict(type="RepeatDataset", times=int(repeat), dataset=train)
    (year, split), = layout["test"]
    evaluator = dict(type="VOCMetric", metric="mAP", iou_thrs=list(VOC_IOU_THRS),
                     eval_mode=scale["test"].get("voc_eval_mode", "11points"))
    return train, dataset(year, split, test_pipeline, True), evaluator


def _rehearsal(loop: dict, test_set: dict, rehearsal: dict, scale: dict) -> tuple[dict, dict]:
    """The rehearsal's caps: training stops after ``train_iters`` iterations (the paper's epochs, milestones
    and warm-up stay in the config: :class:`ld_core.engine.CappedEpochBasedTrainLoop`), the test set is its
    first ``test_images`` images (mmengine's dataset ``indices``)."""
    if loop["type"] != "EpochBasedTrainLoop":
        raise ConfigError(f"{scale['path']}: the rehearsal caps epoch-based training (train.loop: epoch), "
                          f"not train.loop: {scale['train']['loop']}")
    loop = dict(loop, type="CappedEpochBasedTrainLoop", iters=int(rehearsal["train_iters"]))
    return loop, dict(test_set, indices=int(rehearsal["test_images"]))


def model_test_cfg(test: dict) -> dict:
    """The detector's ``test_cfg`` (score threshold, NMS) from a profile's ``test`` section."""
    return dict(nms_pre=test["nms_pre"], min_bbox_size=0, score_thr=test["score_thr"],
                nms=dict(type="nms", iou_threshold=test["nms_iou"]), max_per_img=test["max_per_img"])


def _optim_wrapper(train: dict) -> dict:
    """mmengine's OptimWrapper: optimizer, optional gradient clipping and DCN offset learning-rate factor."""
    wrapper = dict(type="OptimWrapper", optimizer=dict(train["optimizer"]))
    if train.get("grad_clip"):
        wrapper["clip_grad"] = dict(train["grad_clip"])
    if train.get("dcn_offset_lr_mult") is not None:
        wrapper["paramwise_cfg"] = dict(dcn_offset_lr_mult=float(train["dcn_offset_lr_mult"]))
    return wrapper


def _training_hooks(train: dict) -> list:
    """Custom hooks of the training loop: mixed precision when the scale asks for it."""
    if not train.get("mixed_precision"):
        return []
    return [dict(type="MixedPrecisionHook", dtype=train["mixed_precision"],
                 channels_last=bool(train.get("channels_last", False)))]


def build_run_config(run: Run, seed: int, scale: dict, *, results_dir: str | Path, classes: Optional[Sequence[str]],
                     data_root: Optional[str] = None, pretrained_dir: Optional[str] = None,
                     voc_root: Optional[str] = None, user_dataset=None, rehearsal: Optional[dict] = None,
                     teacher_config: Optional[str] = None, teacher_ckpt: Optional[str] = None) -> dict:
    """The mmdet config (as a dict) of one run and seed; ``user_dataset`` replaces the run's matrix dataset;
    ``rehearsal`` (the pipeline config's, ``make rehearse`` only) caps training and evaluation."""
    if (run.teacher is None) != (teacher_config is None):
        raise ConfigError(f"run '{run.id}': teacher config must be given exactly when the run has a teacher")
    num_classes = len(classes) if classes else MMDET_NUM_CLASSES[run.dataset]
    metainfo = dict(classes=tuple(classes)) if classes else None
    t, te = scale["train"], scale["test"]
    loop, schedulers = _schedule(run, scale)
    train_pipeline, test_pipeline = _pipelines(scale, run.schedule)

    parts = detector_parts(run.detector, num_classes, scale["model"], distribution=run.distribution,
                           distill=run.distill if run.teacher is not None else None, train=t)
    neck = dict(type="FPN", in_channels=[c * scale["model"]["backbone_base_channels"] // 64 for c in FPN_IN[run.depth]],
                out_channels=scale["model"]["neck_channels"], start_level=1, add_extra_convs="on_output", num_outs=5)
    neck.update(parts.get("neck") or {})
    model = dict(
        type=parts["type"],
        data_preprocessor=dict(type="DetDataPreprocessor", pad_size_divisor=32, **IMG_NORM),
        backbone=_backbone(run, scale, pretrained_dir),
        neck=neck,
        bbox_head=parts["bbox_head"],
        train_cfg=parts["train_cfg"],
        test_cfg=model_test_cfg(te))
    if run.teacher is not None:
        model.update(type="LocalizationDistiller", student_type=parts["type"], teacher_config=str(teacher_config),
                     teacher_ckpt=None if teacher_ckpt is None else str(teacher_ckpt),
                     teacher_cache_mb=float(t.get("teacher_cache_mb") or 0))

    if run.dataset == "voc":
        train_set, test_set, evaluator = _voc_datasets(scale, results_dir, voc_root, user_dataset, metainfo, run,
                                                       train_pipeline, test_pipeline)
    else:
        train_set, test_set, evaluator = _coco_datasets(scale, results_dir, data_root, user_dataset, metainfo,
                                                        train_pipeline, test_pipeline)

    hooks = _training_hooks(t)
    if rehearsal:
        loop, test_set = _rehearsal(loop, test_set, rehearsal, scale)
        hooks.append(dict(type="CheckInvalidLossHook", interval=1))  # mmdet's: fails on a NaN/inf loss
    sampler = dict(type="InfiniteSampler", shuffle=True) if t["loop"] == "iter" else dict(type="DefaultSampler", shuffle=True)
    workers = t["num_workers"]
    cfg = dict(
        custom_imports=dict(imports=["ld_core.models", "ld_core.ops", "ld_core.engine"], allow_failed_imports=False),
        default_scope="mmdet",
        model=model,
        train_dataloader=dict(batch_size=t["batch_size"], num_workers=workers, persistent_workers=workers > 0,
                              sampler=sampler, batch_sampler=dict(type="AspectRatioBatchSampler"),
                              dataset=train_set),
        test_dataloader=dict(batch_size=te["batch_size"], num_workers=workers, persistent_workers=workers > 0,
                             drop_last=False, sampler=dict(type="DefaultSampler", shuffle=False),
                             dataset=test_set),
        test_evaluator=evaluator,
        test_cfg=dict(type="TestLoop"),
        train_cfg=loop,
        optim_wrapper=_optim_wrapper(t),
        custom_hooks=hooks,
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
        ld_repro=dict(run=run.id, seed=int(seed), scale=scale["name"], backbone=run.backbone, dataset=run.dataset,
                      detector=run.detector, distribution=run.distribution,
                      teacher=run.teacher, distill=dict(run.distill)),
    )
    if user_dataset is not None:
        cfg["ld_repro"]["dataset_file"] = user_dataset.path
    return cfg
