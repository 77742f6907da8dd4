"""Detections of a trained student on its whole test dataset, in COCO results format (``ld_core noise``).

The config's ``test_dataloader`` dataset and pipeline, batches of its ``batch_size`` in dataset order,
``model.test_step`` on the CPU (the computation of ``ld_core evaluate``); the student and its weights come
from :func:`.trained.load_student`. Label ``l`` maps to the ``l``-th category id of the classes, as mmdet's
``CocoMetric``.
"""
from __future__ import annotations

import contextlib
import copy
import io
import os
import time
from typing import Union

import torch
from mmdet.registry import DATASETS
from mmengine.dataset import pseudo_collate

from ..errors import DataError
from .trained import StudentConfig, load_student


def coco_detections(student: StudentConfig, checkpoint: Union[str, os.PathLike], coco_gt) -> tuple:
    """``(detections, category ids, seconds)``: the detections (``image_id``, ``category_id``, ``bbox`` as
    ``[x, y, w, h]``, ``score``) of ``student`` with the weights of ``checkpoint`` on its whole test dataset;
    the category ids are those of ``coco_gt`` (a pycocotools ``COCO``) named by the dataset's classes."""
    start = time.perf_counter()
    model = load_student(student, checkpoint, "cpu").model
    cfg = student.cfg
    with contextlib.redirect_stdout(io.StringIO()):  # mmdet's COCO loader prints
        dataset = DATASETS.build(copy.deepcopy(cfg["test_dataloader"]["dataset"]))
    if len(dataset) == 0:
        raise DataError(f"{student.path}: the test dataset is empty")
    cat_ids = coco_gt.getCatIds(catNms=list(dataset.metainfo["classes"]))
    batch_size = max(1, int(cfg["test_dataloader"].get("batch_size", 1)))
    dets = []
    with torch.no_grad():
        for first in range(0, len(dataset), batch_size):
            batch = pseudo_collate([dataset[i] for i in range(first, min(first + batch_size, len(dataset)))])
            for sample in model.test_step(batch):
                pred = sample.pred_instances
                boxes = pred.bboxes.cpu().numpy()
                for box, score, label in zip(boxes, pred.scores.cpu().numpy(), pred.labels.cpu().numpy()):
                    x1, y1, x2, y2 = box.tolist()
                    dets.append(dict(image_id=int(sample.img_id), category_id=int(cat_ids[int(label)]),
                                     bbox=[x1, y1, x2 - x1, y2 - y1], score=float(score)))
    return dets, cat_ids, time.perf_counter() - start
