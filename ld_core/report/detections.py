"""Detections of a trained student for the figures: the model loaded by :mod:`ld_core.models.trained`, its test
pipeline, the head's NMS IoU overridden, one image or a batched pass over many at several NMS IoUs (how:
:mod:`.figures`, "Inference")."""
from __future__ import annotations

import contextlib
import copy
from typing import Optional, Sequence

import numpy as np

from ..errors import ConfigError
from ..models.trained import load_student, read_student_config

BATCH_SIZE = 16             # images per forward pass over the validation split


def load_model(config, checkpoint, device: str = "cpu"):
    """The plain GFL student of ``config`` with ``checkpoint``'s weights, in eval mode."""
    student = read_student_config(config)
    if "nms" not in (student.cfg["model"].get("test_cfg") or {}):
        raise ConfigError(f"{student.path}: model.test_cfg has no 'nms' entry")
    if "pipeline" not in ((student.cfg.get("test_dataloader") or {}).get("dataset") or {}):
        raise ConfigError(f"{student.path}: config has no test_dataloader.dataset.pipeline")
    return load_student(student, checkpoint, device).model


@contextlib.contextmanager
def nms_iou_override(model, iou: Optional[float]):
    """Temporarily set the head's NMS IoU threshold (``None``: leave the config's)."""
    nms = model.bbox_head.test_cfg["nms"]
    old = nms["iou_threshold"]
    if iou is not None:
        nms["iou_threshold"] = float(iou)
    try:
        yield
    finally:
        nms["iou_threshold"] = old


def _pipeline(model):
    """The config's test pipeline without annotation loading (inference needs only the image)."""
    from mmcv.transforms import Compose

    from mmdet.utils import get_test_pipeline_cfg

    pipe = getattr(model, "_ld_fig_pipeline", None)
    if pipe is None:
        steps = [copy.deepcopy(s) for s in get_test_pipeline_cfg(model.cfg)
                 if not str(s.get("type", "")).endswith("LoadAnnotations")]
        pipe = Compose(steps)
        model._ld_fig_pipeline = pipe
    return pipe


def detect(model, image_path, nms_iou: Optional[float] = None) -> dict:
    """Detections of ``model`` on one image (original image coordinates), NMS IoU overridden if given.

    Returns ``{'bboxes': (n,4) float32 xyxy, 'scores': (n,), 'labels': (n,) int}`` sorted by score; the
    model's own ``test_cfg.score_thr`` / ``max_per_img`` apply.
    """
    from mmdet.apis import inference_detector

    with nms_iou_override(model, nms_iou):
        result = inference_detector(model, str(image_path), test_pipeline=_pipeline(model))
    return _as_det(result.pred_instances)


def _as_det(inst) -> dict:
    scores = inst.scores.detach().cpu().numpy().astype(np.float32)
    order = np.argsort(-scores, kind="stable")
    return dict(bboxes=inst.bboxes.detach().cpu().numpy().astype(np.float32)[order].reshape(-1, 4),
                scores=scores[order], labels=inst.labels.detach().cpu().numpy().astype(np.int64)[order])


def detect_many(model, image_paths: Sequence, nms_ious: Sequence[float], batch_size: int = BATCH_SIZE) -> list[dict]:
    """Detections of ``model`` on every image at each NMS IoU of ``nms_ious``: ``[{iou: det}, ...]``.

    The same computation as :func:`detect` (test pipeline, ``data_preprocessor``, ``extract_feat``, head,
    ``predict_by_feat`` with ``rescale``), but one forward pass per batch of images for all IoUs: only the
    head's post-processing (its ``test_cfg`` NMS IoU) is repeated. A batch is a run of consecutive images
    of one shape after the pipeline (at most ``batch_size``), so the padding, and hence every result, is
    that of a single image, and at most one batch of images is held in memory.
    """
    import torch

    pipe = _pipeline(model)
    ious = [float(v) for v in nms_ious]
    batch_size = max(int(batch_size), 1)
    out: list[dict] = []
    pending: list[dict] = []

    def flush():
        if not pending:
            return
        data = model.data_preprocessor(dict(inputs=[s["inputs"] for s in pending],
                                            data_samples=[s["data_samples"] for s in pending]), False)
        feats = model.bbox_head(model.extract_feat(data["inputs"]))
        metas = [s.metainfo for s in data["data_samples"]]
        per_image = [{} for _ in pending]
        for iou in ious:
            with nms_iou_override(model, iou):
                results = model.bbox_head.predict_by_feat(*feats, batch_img_metas=metas, rescale=True)
            for slot, inst in zip(per_image, results):
                slot[iou] = _as_det(inst)
        out.extend(per_image)
        pending.clear()

    with torch.no_grad():
        for i, path in enumerate(image_paths):
            sample = pipe(dict(img_path=str(path), img_id=i))
            if pending and (len(pending) == batch_size or sample["inputs"].shape != pending[0]["inputs"].shape):
                flush()
            pending.append(sample)
        flush()
    return out
