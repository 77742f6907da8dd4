"""Mixed-precision training where it is safe: convolutions in bf16, head outputs and losses in fp32.

mmengine's ``AmpOptimWrapper`` runs the whole forward under autocast on CUDA only; there, box decoding,
GIoU, DFL and LD would see bf16 head outputs (8-bit mantissa). Here only the convolutional parts run under
``torch.autocast`` (the detector's ``extract_feat`` = backbone + neck, and its head's ``forward``); their
outputs are cast back to fp32, so label assignment, losses, gradients of the master weights and the
optimizer state stay fp32, and bf16 needs no loss scaler. A distiller's frozen teacher gets the same
treatment (its forward is inference only). A strided convolution whose input is smaller than its stride runs
in fp32 (:func:`keep_small_strided_fp32`): oneDNN's bf16 weight gradient reads uninitialised memory there.
Works on CPU (measured on the 2-core machine, one training alone, batch 8 at 128 px: R-18 step 0.120 -> 0.096 s,
R-18 <- R-101 LD 0.200 -> 0.137 s) and on CUDA.
"""
from __future__ import annotations

import functools
import platform

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from ..errors import ConfigError
from ..precision import MIXED_PRECISION_DTYPES

DTYPES = {name: getattr(torch, name) for name in MIXED_PRECISION_DTYPES}


def check_dtype(dtype: str, where: str) -> torch.dtype:
    """The torch dtype of a supported mixed-precision name; a one-line ``ConfigError`` otherwise."""
    if dtype not in DTYPES:
        raise ConfigError(f"{where}: dtype '{dtype}' is not supported (choose from {', '.join(DTYPES)})")
    return DTYPES[dtype]


def _to_float(obj):
    """fp32 copies of the floating-point tensors in a (nested) tuple/list/dict of head or neck outputs."""
    if torch.is_tensor(obj):
        return obj.float() if obj.is_floating_point() else obj
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_float(o) for o in obj)
    if isinstance(obj, dict):
        return {k: _to_float(v) for k, v in obj.items()}
    return obj


def _autocast_outputs(fn, device_type: str, dtype: torch.dtype):
    @functools.wraps(fn)
    def run_in_autocast(*args, **kwargs):
        with torch.autocast(device_type=device_type, dtype=dtype):
            out = fn(*args, **kwargs)
        return _to_float(out)

    return run_in_autocast


def _fp32_forward(fn, device_type: str):
    """``fn`` outside autocast, on fp32 copies of its floating-point tensor arguments."""
    @functools.wraps(fn)
    def run_in_fp32(*args, **kwargs):
        with torch.autocast(device_type=device_type, enabled=False):
            return fn(*_to_float(args), **_to_float(kwargs))

    return run_in_fp32


def _fp32_only_modules() -> tuple:
    """Module types whose kernels have no bfloat16 version: mmcv 2.1's deformable convolutions dispatch on
    float, double (and half on CUDA) only ("deformable_im2col_cpu" not implemented for 'BFloat16')."""
    try:
        from mmcv.ops import DeformConv2d, ModulatedDeformConv2d
    except ImportError:  # mmcv without ops
        return ()
    return DeformConv2d, ModulatedDeformConv2d


def keep_fp32(part: torch.nn.Module, device_type: str) -> int:
    """Run the modules of :func:`_fp32_only_modules` in fp32 inside an autocast region; their number."""
    kinds = _fp32_only_modules()
    count = 0
    for module in part.modules():
        if kinds and isinstance(module, kinds) and not getattr(module, "_ld_fp32", False):
            module.forward = _fp32_forward(module.forward, device_type)
            module._ld_fp32 = True
            count += 1
    return count


def _fp32_below_stride(fn, stride: tuple, device_type: str):
    """``fn`` (a convolution's forward) in fp32 when its input is smaller than ``stride`` in a spatial dimension."""
    fp32 = _fp32_forward(fn, device_type)

    @functools.wraps(fn)
    def forward(x, *args, **kwargs):
        small = any(size < step for size, step in zip(x.shape[-len(stride):], stride))
        return (fp32 if small else fn)(x, *args, **kwargs)

    return forward


def keep_small_strided_fp32(part: torch.nn.Module, device_type: str) -> int:
    """Run a strided ``Conv2d`` of ``part`` in fp32 on an input smaller than its stride; the number wrapped.

    oneDNN's bf16 backward-weights kernel (torch 2.13 / oneDNN 3.12, ``jit_bf16:avx512_core``; issue 30 saw the
    same on an AMX Xeon) reads uninitialised memory when the input is narrower than the stride (and padded),
    e.g. the FPN's extra stride-2 convolution on a 1 x 1 map (64-px inputs): its weight gradient is then garbage
    (inf, nan, 1e18) that differs from run to run. Both spatial dimensions are checked (only the width was seen
    to fail); such maps are a few pixels, so fp32 there costs nothing.
    """
    if device_type != "cpu":
        return 0
    count = 0
    for module in part.modules():
        if (isinstance(module, torch.nn.Conv2d) and max(module.stride) > 1
                and not getattr(module, "_ld_small_fp32", False)):
            module.forward = _fp32_below_stride(module.forward, tuple(module.stride), device_type)
            module._ld_small_fp32 = True
            count += 1
    return count


def fast_bf16(device_type: str) -> bool:
    """Whether this device runs bfloat16 convolutions natively (AVX512-BF16/AMX or ARM bf16 CPUs, Ampere+ GPUs).

    Elsewhere oneDNN emulates bf16, slower than fp32: on AVX2 CPUs, and on AVX-512 CPUs without the BF16
    extension, which ``torch.ops.mkldnn._is_mkldnn_bf16_supported()`` counts as supported (measured on an
    AVX-512 Xeon without it: bf16 convolutions at 34 GFLOP/s against 73 in fp32, `bench profile`).
    """
    try:
        if device_type == "cuda":  # native only: emulated bf16 (pre-Ampere) is slower than fp32
            return bool(torch.cuda.is_bf16_supported(including_emulation=False))
        if device_type == "cpu":
            if platform.machine().lower() in ("x86_64", "amd64", "i386", "i686"):
                return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError, TypeError):  # older torch: no such query
        pass
    return False


def enable_mixed_precision(detector: torch.nn.Module, dtype: str = "bfloat16",
                           channels_last: bool = False) -> torch.nn.Module:
    """Run ``detector.extract_feat`` and ``detector.bbox_head.forward`` (and a teacher's) under autocast, with
    the deformable convolutions of mmcv inside them in fp32 (no bf16 kernels), and on CPU the strided
    convolutions of inputs smaller than their stride (:func:`keep_small_strided_fp32`).

    Idempotent; ``channels_last`` also converts the weights (student and teacher) to NHWC memory format.
    Returns the detector.
    """
    cast = check_dtype(dtype, "mixed precision")
    device_type = next(detector.parameters()).device.type
    parts = [detector] + ([detector.teacher] if getattr(detector, "teacher", None) is not None else [])
    for part in parts:
        if getattr(part, "_ld_mixed_precision", None):
            continue
        keep_fp32(part, device_type)
        keep_small_strided_fp32(part, device_type)
        part.extract_feat = _autocast_outputs(part.extract_feat, device_type, cast)
        part.bbox_head.forward = _autocast_outputs(part.bbox_head.forward, device_type, cast)
        part._ld_mixed_precision = dtype
    if channels_last:
        detector.to(memory_format=torch.channels_last)  # a distiller's _apply also reaches its teacher
    return detector


@HOOKS.register_module()
class MixedPrecisionHook(Hook):
    """Turns on :func:`enable_mixed_precision` for training (evaluation stays fp32)."""

    priority = "VERY_HIGH"

    def __init__(self, dtype: str = "bfloat16", channels_last: bool = False):
        check_dtype(dtype, "MixedPrecisionHook")
        self.dtype, self.channels_last = dtype, channels_last

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        device_type = next(model.parameters()).device.type
        if not fast_bf16(device_type):
            runner.logger.warning(f"mixed precision off: this {device_type} has no native bfloat16 convolutions "
                                  "(they would be slower than fp32); training in fp32")
            return
        enable_mixed_precision(model, self.dtype, self.channels_last)
        runner.logger.info(f"mixed precision: {self.dtype} autocast for backbone, neck and head convolutions "
                           f"(fp32 losses and weights){', channels_last' if self.channels_last else ''}")
