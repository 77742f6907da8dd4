"""The teacher–student detector: a student single-stage detector distilled from a frozen teacher."""
from __future__ import annotations

from typing import Optional

import torch
from mmdet.models.detectors import SingleStageDetector
from mmdet.registry import MODELS
from mmengine.config import Config

from ..errors import ConfigError, require_file
from .checkpoints import load_tensor_state_dict
from .compat import check_teacher_compat
from .teacher_cache import TeacherOutputCache


def build_teacher(teacher_config: str, teacher_ckpt: Optional[str], student_model_cfg: dict) -> torch.nn.Module:
    """Build the teacher from its own config, check it against the student, load its weights, freeze it."""
    path = require_file(teacher_config, "teacher config")
    teacher_model_cfg = Config.fromfile(str(path)).model
    if teacher_model_cfg.get("type") == "LocalizationDistiller":
        raise ConfigError(f"{path}: a teacher must be a plain detector, not a distiller")
    check_teacher_compat(student_model_cfg, teacher_model_cfg, "(this model)", str(path))
    teacher = MODELS.build(teacher_model_cfg)
    if teacher_ckpt:
        state = load_tensor_state_dict(teacher_ckpt)
        missing, unexpected = teacher.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ConfigError(f"{teacher_ckpt}: teacher checkpoint does not fit {path} "
                              f"({len(missing)} missing, {len(unexpected)} unexpected keys, e.g. "
                              f"{(missing or unexpected)[0]})")
    teacher.requires_grad_(False)
    teacher.eval()
    return teacher


@MODELS.register_module()
class LocalizationDistiller(SingleStageDetector):
    """Single-stage detector trained with LD from a teacher.

    The teacher is built from ``teacher_config`` + ``teacher_ckpt`` (tensor-only state dict), frozen,
    always in eval mode, and deliberately *not* a submodule: it is absent from ``parameters()``, the
    optimizer, ``state_dict()`` (so checkpoints hold the student only) and any DDP wrapper. It runs
    under ``no_grad`` on the same preprocessed batch as the student. Inference is the student's alone.
    ``student_type`` names the plain detector the student is (GFL, RetinaNet, FCOS, ATSS: all single-stage
    detectors that differ only in their head), used when the student is evaluated or exported on its own.
    ``teacher_cache_mb`` > 0 reuses the teacher's outputs of an image seen before (:mod:`.teacher_cache`).
    """

    def __init__(self, backbone: dict, bbox_head: dict, teacher_config: str, teacher_ckpt: Optional[str] = None,
                 neck: Optional[dict] = None, train_cfg: Optional[dict] = None, test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None, init_cfg=None, student_type: str = "GFL",
                 teacher_cache_mb: float = 0):
        super().__init__(backbone=backbone, neck=neck, bbox_head=bbox_head, train_cfg=train_cfg,
                         test_cfg=test_cfg, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if not getattr(self.bbox_head, "accepts_teacher", False):
            raise ConfigError(f"{teacher_config}: the student head {type(self.bbox_head).__name__} takes no teacher "
                              "(use an LD head: LDGFLHead, LDDistRetinaHead, LDDistFCOSHead or LDDistATSSHead)")
        self.student_type = student_type
        student_cfg = dict(bbox_head=bbox_head, data_preprocessor=data_preprocessor or {})
        with torch.random.fork_rng(devices=[]):  # building the teacher must not shift the student's random
            # stream: with the same seed, an LD student starts from the baseline's initial weights and data order
            object.__setattr__(self, "teacher", build_teacher(teacher_config, teacher_ckpt, student_cfg))
        self.teacher_cache = TeacherOutputCache(teacher_cache_mb) if teacher_cache_mb else None

    def _teacher_forward(self, batch_inputs: torch.Tensor):
        return self.teacher.bbox_head(self.teacher.extract_feat(batch_inputs))

    def loss(self, batch_inputs: torch.Tensor, batch_data_samples) -> dict:
        """Student GT losses + LD; the teacher sees the very same (augmented, normalised) batch.

        The student head gets the teacher head's full outputs (class scores, box logits and, for FCOS/ATSS,
        centerness), computed under ``no_grad``.
        """
        feats = self.extract_feat(batch_inputs)
        if self.teacher_cache is not None:
            teacher_outs = self.teacher_cache(self._teacher_forward, batch_inputs)
        else:
            with torch.no_grad():
                teacher_outs = self._teacher_forward(batch_inputs)
        return self.bbox_head.loss(feats, teacher_outs, batch_data_samples)

    def train(self, mode: bool = True):
        """Switch the student's mode; the teacher stays in eval mode (BN running statistics)."""
        super().train(mode)
        self.teacher.eval()
        return self

    def _apply(self, fn, *args, **kwargs):
        """Device/dtype moves (``to``, ``cuda``, ``cpu``, ``half``) also reach the non-submodule teacher."""
        self.teacher._apply(fn, *args, **kwargs)
        return super()._apply(fn, *args, **kwargs)
