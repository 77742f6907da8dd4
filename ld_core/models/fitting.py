"""Weight files fitted to a model: detectors and backbones built from a config on the ``meta`` device (shapes
only), a released detector or an ImageNet backbone file checked key by key and shape by shape against them."""
from __future__ import annotations

import os
from typing import Mapping, Optional

import torch

from .. import engine, models, ops  # noqa: F401  (ld_core's registered components, for build_model)
from ..errors import ConfigError
from .checkpoints import NON_WEIGHT_SUFFIXES, _listed, fit_problem, read_checkpoint

# Keys a released detector may lack although the model has them: fixed buffers with no learned state, filled
# from the freshly built model (GFocal's integral projection 0..reg_max). Their shapes are still compared.
DERIVED_BUFFERS = (r"\.integral\.project$",)
# An ImageNet file holds the classifier (fc) but not what detection adds to the backbone: the DCN offset
# convolutions (mmcv's DeformConv2dPack.conv_offset, zero-initialised by design, as with mmdet's own DCN configs).
BACKBONE_MAY_MISS = (r"(^|\.)conv_offset\.",)
BACKBONE_MAY_ADD = (r"^fc\.",)


def build_model(model_cfg: Mapping, device: str = "meta") -> torch.nn.Module:
    """An mmdet model from a config dict, on the ``meta`` device (shapes only: no memory, no init) or the CPU."""
    import copy
    import warnings

    from mmengine.registry import init_default_scope
    import mmdet.models  # noqa: F401  (registers mmdet's models)
    from mmdet.registry import MODELS

    init_default_scope("mmdet")
    cfg = copy.deepcopy(dict(model_cfg))
    with warnings.catch_warnings():  # mmdet's DeprecationWarnings (num_anchors, ...) are not the user's business
        warnings.simplefilter("ignore")
        with torch.device(device):
            return MODELS.build(cfg)


def state_shapes(module: torch.nn.Module) -> dict:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def describe_model(model_cfg: Mapping) -> str:
    """``GFL, ResNet-101, 80 classes, reg_max 16`` of a detector config (for messages)."""
    backbone, head = model_cfg.get("backbone", {}), model_cfg.get("bbox_head", {})
    arch = f"{backbone.get('type')}-{backbone.get('depth')}"
    if backbone.get("groups"):
        arch += f" {backbone['groups']}x{backbone.get('base_width')}d"
    if backbone.get("dcn"):
        arch += "-DCN"
    parts = [str(model_cfg.get("type")), arch, f"{head.get('num_classes')} classes"]
    if "reg_max" in head:
        parts.append(f"reg_max {head['reg_max']}")
    return ", ".join(parts)


def _class_problem(found, wanted) -> Optional[str]:
    if not found or not wanted or len(found) != len(wanted):
        return None  # a count difference is a shape mismatch of the classifier, reported as such
    a, b = [str(c).lower() for c in found], [str(c).lower() for c in wanted]
    if a == b:
        return None
    first = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
    return (f"its classes differ from the dataset's (class {first}: '{found[first]}' in the file vs "
            f"'{wanted[first]}' in the dataset)")


def fit_detector(path: str | os.PathLike, model_cfg: Mapping, what: str, classes=None, model=None) -> tuple:
    """``(state_dict, info, summary)`` of a released detector checkpoint checked against ``model_cfg``.

    Keys and shapes must be exactly the model's (a ``module.`` prefix stripped, ``num_batches_tracked`` and the
    :data:`DERIVED_BUFFERS` optional); class names, when the file's meta has them, must be the dataset's
    ``classes``. ``model``: the built model (else built on the meta device). Problems: one ConfigError line
    ``<file>: does not fit <what> (<architecture>): <first mismatching shapes / keys>``.
    """
    state, info = read_checkpoint(path, detector=True)
    model = build_model(model_cfg) if model is None else model
    expected = state_shapes(model)
    problem = fit_problem(expected, state, may_miss=DERIVED_BUFFERS)
    if problem is None:
        problem = _class_problem(info.get("classes"), classes)
    if problem is not None:
        raise ConfigError(f"{path}: does not fit {what} ({describe_model(model_cfg)}): {problem}")
    used = sum(1 for k in expected if k in state)
    source = info["format"] + (f", {info['version']}" if info.get("version") else "")
    summary = f"{used} of {len(expected)} tensors of {what} ({describe_model(model_cfg)}) from {path} ({source})"
    return state, info, summary


def fit_backbone(path: str | os.PathLike, backbone_cfg: Mapping) -> str:
    """Check an ImageNet backbone file (torchvision or open-mmlab format) against mmdet's ResNet/ResNeXt of
    ``backbone_cfg`` (its ``init_cfg`` ignored): every backbone tensor must be in the file with its shape, except
    DCN offsets; the classifier (``fc``) may be there. Returns the summary line for the train log; problems are
    one ConfigError line naming the file."""
    cfg = {k: v for k, v in dict(backbone_cfg).items() if k != "init_cfg"}
    state, info = read_checkpoint(path, detector=False)
    expected = state_shapes(build_model(cfg))
    name = f"{cfg.get('type')}-{cfg.get('depth')}"
    if cfg.get("groups"):
        name += f" {cfg['groups']}x{cfg.get('base_width')}d"
    if any(k.startswith(("backbone.", "bbox_head.", "neck.")) for k in state) and not any(k in expected for k in state):
        raise ConfigError(f"{path}: is a detector checkpoint (backbone./neck./bbox_head. keys), not the ImageNet "
                          f"weights of the {name} backbone")
    problem = fit_problem(expected, state, may_miss=BACKBONE_MAY_MISS, may_add=BACKBONE_MAY_ADD)
    if problem is not None:
        raise ConfigError(f"{path}: does not fit the {name} backbone: {problem}")
    loaded = [k for k in expected if k in state]
    offsets = [k for k in expected if k not in state and not k.endswith(NON_WEIGHT_SUFFIXES)]
    ignored = [k for k in state if k not in expected]
    text = f"{len(loaded)} of {len(expected)} backbone tensors ({name}) loaded from {path}"
    if offsets:
        text += f"; {len(offsets)} DCN offset tensors not in ImageNet weights (zero init)"
    if ignored:
        text += f"; ignored: {_listed(ignored, 4)}"
    return text
