"""The variants of the training-step benchmark, shared by ``bench train`` (:mod:`ld_core.commands.bench`) and
``bench profile`` (:mod:`ld_core.commands.step_profile`): their configs, one set of random weights, one synthetic
batch, the environment and the checks of the common arguments."""
from __future__ import annotations

import copy
import gc
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List

import mmcv
import mmdet
import mmengine
import torch
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmengine.config import Config
from mmengine.structures import InstanceData

from ..config.builder import build_run_config
from ..config.matrix import load_matrix
from ..config.scale import load_scale
from ..data.synthetic import CLASSES
from ..engine import enable_mixed_precision
from ..errors import ConfigError
from ..models.checkpoints import save_tensor_checkpoint
from ..student import LD_HEAD_KEYS, student_only
from .fps import device_name

ROOT = Path(__file__).resolve().parents[2]
SCALES = ("embedded", "paper", "tiny")
STUDENT_RUN, TEACHER_RUN = "gfl_r18_ld_r101", "gfl_r101_teacher"
RTOL, ATOL = 1e-4, 1e-6  # fp32
BF16_RTOL, BF16_ATOL = 2e-2, 1e-3  # bf16 convolutions (8-bit mantissa), fp32 losses
SGD = dict(lr=0.01, momentum=0.9, weight_decay=1e-4)


# ----------------------------------------------------------------------------------------------- configs
def model_configs(scale_name: str, workdir: Path) -> dict:
    """Student (distilled run) and teacher model configs of the scale; the teacher config file is written."""
    scale = load_scale(ROOT / "configs" / "scales" / f"{scale_name}.yaml")
    matrix = load_matrix(ROOT / "configs" / "experiments.yaml")
    common = dict(results_dir=workdir, classes=None if scale_name == "paper" else list(CLASSES),
                  data_root=str(workdir))  # data paths are never read
    teacher_run = matrix.run(TEACHER_RUN)
    teacher = build_run_config(teacher_run, teacher_run.seed, scale, **common)["model"]
    teacher_cfg_path = workdir / "teacher_config.py"
    teacher_ckpt = workdir / "teacher.pth"
    student = build_run_config(matrix.run(STUDENT_RUN), 0, scale, teacher_config=str(teacher_cfg_path),
                               teacher_ckpt=str(teacher_ckpt), **common)
    for model in (teacher, student["model"]):
        model["backbone"].pop("init_cfg", None)  # random weights: never fetch ImageNet checkpoints
    student["model"]["teacher_cache_mb"] = 0  # one batch trained over and over: every step is a teacher forward
    Config(dict(model=teacher)).dump(str(teacher_cfg_path))
    return dict(scale=scale, student=student["model"], plain=student_only(student)["model"], teacher=teacher,
                teacher_config=teacher_cfg_path, teacher_ckpt=teacher_ckpt)


def stock_config(ours: dict) -> dict:
    """mmdet's stock LD detector for the same student, teacher and LD settings."""
    cfg = copy.deepcopy(ours)
    cfg["type"] = "KnowledgeDistillationSingleStageDetector"
    cfg.pop("student_type", None)
    cfg.pop("teacher_cache_mb", None)
    head = cfg["bbox_head"]
    ld = head.pop("loss_ld")
    if head.get("loss_kd") or head.get("loss_ld_vlr"):
        raise ConfigError("stock LDHead has Main LD only; the benchmark needs a distill: main student")
    if head.get("ld_rows", "edge") != "edge":
        raise ConfigError("stock LDHead has one softmax per box edge; the benchmark needs ld_rows: edge")
    for key in LD_HEAD_KEYS:  # stock LDHead divides the LD sum by 4 only ('reference'); Main LD only
        if key != "loss_ld":
            head.pop(key, None)
    head.update(type="LDHead", loss_ld=dict(type="KnowledgeDistillationKLDivLoss", loss_weight=ld["loss_weight"],
                                            T=ld["T"]))
    if ld.get("true_kl"):
        raise ConfigError("stock LDHead has no true_kl option; the benchmark needs true_kl: false")
    return cfg


def ours_config(ours: dict) -> dict:
    cfg = copy.deepcopy(ours)
    cfg["bbox_head"]["box_loss_normalize"] = "ldhead"  # stock LDHead's GT-box normaliser: equal losses
    return cfg


def fast_plain_config(plain: dict) -> dict:
    """The plain student with the LD student's batched ATSS targets (``BatchedGFLHead``)."""
    cfg = copy.deepcopy(plain)
    cfg["bbox_head"]["type"] = "BatchedGFLHead"
    return cfg


# ---------------------------------------------------------------------------------------------- variants
@dataclass(frozen=True)
class Variant:
    """One entry of the benchmark: how to get its model config from the shared configs."""

    name: str
    config: Callable[[dict], dict]
    distilled: bool
    rtol: float = RTOL
    atol: float = ATOL
    mixed_precision: bool = False  # the fast path: ld_core.engine.enable_mixed_precision (bf16 convolutions)
    plain: str = "plain"           # the non-distilled variant its LD overhead is measured against


VARIANTS: List[Variant] = [
    Variant("stock", lambda c: stock_config(c["student"]), distilled=True),
    Variant("ours", lambda c: ours_config(c["student"]), distilled=True),
    Variant("plain", lambda c: copy.deepcopy(c["plain"]), distilled=False),
    Variant("fast", lambda c: ours_config(c["student"]), distilled=True, rtol=BF16_RTOL, atol=BF16_ATOL,
            mixed_precision=True, plain="fastplain"),
    Variant("fastplain", lambda c: fast_plain_config(c["plain"]), distilled=False, mixed_precision=True),
]


def build_variant(variant: Variant, configs: dict, student_state: dict, device: str):
    """The variant's model on ``device``, in train mode, with the shared student weights."""
    model = MODELS.build(variant.config(configs))
    model.load_state_dict(student_state, strict=True)  # teachers are not submodules: student keys only
    model.to(device)
    model.train()
    if variant.mixed_precision:
        enable_mixed_precision(model, "bfloat16", channels_last=device.startswith("cuda"))
    return model


def write_shared_weights(configs: dict, seed: int) -> dict:
    """One random student state dict (returned) and one random teacher (tensor-only checkpoint)."""
    torch.manual_seed(seed + 1)
    save_tensor_checkpoint(MODELS.build(copy.deepcopy(configs["teacher"])), configs["teacher_ckpt"],
                           {"run": TEACHER_RUN, "bench": True})
    torch.manual_seed(seed)
    student = MODELS.build(copy.deepcopy(configs["plain"]))
    return {k: v.detach().clone() for k, v in student.state_dict().items()}


# ------------------------------------------------------------------------------------------------- batch
def make_batch(batch: int, width: int, height: int, gt_per_image: int, num_classes: int, seed: int) -> dict:
    """A collated (``pseudo_collate``-like) batch on the CPU: uint8 images + data samples with GT boxes."""
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    size = torch.tensor([width, height], dtype=torch.float32)
    for _ in range(batch):
        inputs.append(torch.randint(0, 256, (3, height, width), dtype=torch.uint8, generator=g))
        wh = (0.05 + 0.45 * torch.rand(gt_per_image, 2, generator=g)) * size
        xy = torch.rand(gt_per_image, 2, generator=g) * (size - wh)
        sample = DetDataSample(metainfo=dict(img_shape=(height, width), ori_shape=(height, width),
                                             scale_factor=(1.0, 1.0), flip=False, flip_direction=None))
        sample.gt_instances = InstanceData(bboxes=torch.cat([xy, xy + wh], dim=1),
                                           labels=torch.randint(0, num_classes, (gt_per_image,), generator=g))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def release(device: str) -> None:
    """Free what the last variant left (garbage, the CUDA cache) and reset the peak-memory counter."""
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


# ----------------------------------------------------------------------------------------- environment
def environment(device: str) -> dict:
    """Device, library versions, threads and cudnn.benchmark of this process (the report's header)."""
    return dict(device=f"{device}: {device_name(device)}", torch=torch.__version__, mmdet=mmdet.__version__,
                mmcv=mmcv.__version__, mmengine=mmengine.__version__, threads=torch.get_num_threads(),
                cudnn_benchmark=bool(torch.backends.cudnn.benchmark))


# -------------------------------------------------------------------------------------------- arguments
def check_arguments(scale, image_size, batch, steps, warmup, device, threads, gt_per_image) -> str:
    """One-line ``ConfigError`` on a bad argument; the device to use."""
    if scale not in SCALES:
        raise ConfigError(f"--scale must be one of {', '.join(SCALES)}, got '{scale}'")
    if image_size is not None and (len(image_size) != 2 or min(image_size) < 32):
        raise ConfigError(f"--image-size needs W H of at least 32 pixels each, got {list(image_size)}")
    for flag, value, low in (("--batch", batch, 1), ("--steps", steps, 1), ("--warmup", warmup, 0),
                             ("--gt-per-image", gt_per_image, 1)):
        if value < low:
            raise ConfigError(f"{flag} must be at least {low}, got {value}")
    if threads is not None and threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {threads}")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: CUDA is not available here (use --device cpu)")
    if not (device == "cpu" or device.startswith("cuda")):
        raise ConfigError(f"--device must be cpu or cuda[:N], got '{device}'")
    return device
