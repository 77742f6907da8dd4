"""The bf16 fast path: convolutions under autocast, fp32 head outputs and losses, teacher included."""
from __future__ import annotations

import pytest
import torch

from helpers import make_batch, tiny_gfl_cfg
from test_teacher import build_distiller


def conv_output_dtypes(model) -> list:
    """Record the dtype of every Conv2d output (student and, if any, teacher) during the next forwards."""
    seen = []
    modules = list(model.modules()) + (list(model.teacher.modules()) if hasattr(model, "teacher") else [])
    for m in modules:
        if isinstance(m, torch.nn.Conv2d):
            m.register_forward_hook(lambda mod, inp, out: seen.append(out.dtype))
    return seen


def test_convolutions_run_in_bf16_and_losses_in_fp32(mmdet_scope):
    from mmdet.registry import MODELS

    from ld_core.engine import enable_mixed_precision

    torch.manual_seed(0)
    model = MODELS.build(tiny_gfl_cfg())
    inputs, samples = make_batch(2)
    reference = model.loss(inputs, samples)
    enable_mixed_precision(model)
    seen = conv_output_dtypes(model)
    feats = model.extract_feat(inputs)
    # bf16 everywhere but the FPN's last stride-2 convolution on a 1 x 1 map (64-px inputs): fp32, see
    # test_strided_convolutions_of_maps_smaller_than_their_stride_run_in_fp32
    assert seen and seen.count(torch.float32) == 1 and set(seen) == {torch.bfloat16, torch.float32}
    assert all(f.dtype == torch.float32 for f in feats)
    cls_scores, bbox_preds = model.bbox_head(feats)
    assert all(t.dtype == torch.float32 for t in cls_scores + bbox_preds)
    losses = model.loss(inputs, samples)
    for name, value in losses.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        assert all(v.dtype == torch.float32 for v in values), name
        # bf16 convolutions move the losses a little, not a lot
        assert float(sum(values)) == pytest.approx(float(sum(reference[name])), rel=3e-2, abs=1e-3), name
    total = sum(sum(v) if isinstance(v, (list, tuple)) else v for v in losses.values())
    total.backward()
    assert all(p.grad is None or p.grad.dtype == torch.float32 for p in model.parameters())
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_teacher_is_wrapped_too_and_wrapping_is_idempotent(teacher_files):
    from ld_core.engine import enable_mixed_precision

    cfg_path, ckpt, _ = teacher_files
    model = build_distiller(cfg_path, ckpt)
    enable_mixed_precision(model)
    student_fn, teacher_fn = model.extract_feat, model.teacher.extract_feat
    enable_mixed_precision(model, channels_last=True)
    assert model.extract_feat is student_fn and model.teacher.extract_feat is teacher_fn
    weight = next(p for p in model.teacher.parameters() if p.dim() == 4)
    assert weight.is_contiguous(memory_format=torch.channels_last)
    seen = conv_output_dtypes(model)
    inputs, samples = make_batch(2, seed=3)
    losses = model.loss(inputs, samples)
    assert seen.count(torch.bfloat16) > 40  # student and teacher convolutions
    assert seen.count(torch.float32) == 2  # their FPN's last convolution on a 1 x 1 map (see above)
    ld = losses["loss_ld"]
    ld = ld if torch.is_tensor(ld) else sum(ld)
    assert ld.dtype == torch.float32 and float(ld) > 0


def test_hook_enables_it_for_training_only_and_rejects_unknown_dtypes(teacher_files, monkeypatch):
    """Where bf16 is native (faked here, so that the test does not depend on the CPU it runs on)."""
    from types import SimpleNamespace

    from ld_core.engine import mixed_precision
    from ld_core.errors import ConfigError

    cfg_path, ckpt, _ = teacher_files
    model = build_distiller(cfg_path, ckpt)
    messages = []
    runner = SimpleNamespace(model=model, logger=SimpleNamespace(info=messages.append))
    monkeypatch.setattr(mixed_precision, "fast_bf16", lambda device_type: True)
    mixed_precision.MixedPrecisionHook().before_train(runner)
    assert model._ld_mixed_precision == "bfloat16" and model.teacher._ld_mixed_precision == "bfloat16"
    assert "bfloat16" in messages[0]
    with pytest.raises(ConfigError, match="float16"):
        mixed_precision.MixedPrecisionHook(dtype="float16")


def test_hook_stays_fp32_where_bf16_is_not_native(teacher_files, monkeypatch):
    """An AVX2-only CPU would run bf16 convolutions slower than fp32: the hook warns and changes nothing."""
    from types import SimpleNamespace

    from ld_core.engine import mixed_precision

    cfg_path, ckpt, _ = teacher_files
    model = build_distiller(cfg_path, ckpt)
    warnings = []
    runner = SimpleNamespace(model=model, logger=SimpleNamespace(info=print, warning=warnings.append))
    monkeypatch.setattr(mixed_precision, "fast_bf16", lambda device_type: False)
    mixed_precision.MixedPrecisionHook().before_train(runner)
    assert not hasattr(model, "_ld_mixed_precision") and "training in fp32" in warnings[0]
    assert "extract_feat" not in vars(model)


def test_resolved_configs_turn_it_on_per_scale():
    from pathlib import Path

    from ld_core.data.synthetic import CLASSES
    from ld_core.config.matrix import load_matrix
    from ld_core.config.builder import build_run_config
    from ld_core.config.scale import load_scale

    root = Path(__file__).resolve().parents[2]
    run = load_matrix(root / "configs" / "experiments.yaml").run("gfl_r18")
    hooks = {}
    for name in ("embedded", "paper"):
        scale = load_scale(root / "configs" / "scales" / f"{name}.yaml")
        cfg = build_run_config(run, 0, scale, results_dir="/tmp/r", classes=list(CLASSES), data_root="/tmp/d")
        hooks[name] = cfg["custom_hooks"]
        assert "ld_core.engine" in cfg["custom_imports"]["imports"]
    # the embedded profile trains NHWC with native bf16 (the hook applies it only there); the paper one does not
    assert hooks["embedded"] == [dict(type="MixedPrecisionHook", dtype="bfloat16", channels_last=True)]
    assert hooks["paper"] == [dict(type="MixedPrecisionHook", dtype="bfloat16", channels_last=False)]


@pytest.mark.parametrize("mutate,needle", [
    (lambda t: t.update(mixed_presicion="bfloat16"), "unknown key 'train.mixed_presicion'"),
    (lambda t: t.update(mixed_precision="float16"), "train.mixed_precision must be bfloat16 or null"),
])
def test_scale_train_section_errors_name_the_file(tmp_path, mutate, needle):
    from pathlib import Path

    import yaml

    from ld_core.errors import ConfigError
    from ld_core.config.scale import load_scale

    root = Path(__file__).resolve().parents[2]
    scale = yaml.safe_load((root / "configs" / "scales" / "embedded.yaml").read_text())
    mutate(scale["train"])
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(scale))
    with pytest.raises(ConfigError, match=needle) as info:
        load_scale(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_mmcv_deformable_convolutions_stay_fp32_inside_the_bf16_backbone(mmdet_scope):
    """mmcv 2.1's DCN has no bf16 kernel ("deformable_im2col_cpu" not implemented for 'BFloat16', on CUDA
    likewise): the paper's X-101-DCN runs keep it in fp32 while the other convolutions run in bf16."""
    from mmcv.ops import DeformConv2d
    from mmdet.registry import MODELS

    from ld_core.engine import enable_mixed_precision

    cfg = tiny_gfl_cfg(depth=50)
    cfg["backbone"].update(dcn=dict(type="DCN", deform_groups=1, fallback_on_stride=False),
                           stage_with_dcn=(False, True, True, True))
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    dcn = [m for m in model.modules() if isinstance(m, DeformConv2d)]
    assert dcn
    inputs, samples = make_batch(2, size=128)
    enable_mixed_precision(model)
    outputs = []
    for m in dcn:
        m.register_forward_hook(lambda mod, inp, out: outputs.append((inp[0].dtype, out.dtype)))
    seen = conv_output_dtypes(model)
    losses = model.loss(inputs, samples)
    total = sum(sum(v) if isinstance(v, (list, tuple)) else v for v in losses.values())
    total.backward()
    # called with the bf16 output of the convolution before it, computed in fp32 (without the wrapper: the
    # NotImplementedError above)
    assert outputs and set(outputs) == {(torch.bfloat16, torch.float32)}
    assert torch.bfloat16 in seen  # the plain convolutions around them
    assert torch.isfinite(total)


def _poison_free_memory() -> None:
    """Leave freed heap blocks full of NaN, so that a kernel reading uninitialised memory shows it."""
    junk = [torch.full((n,), float("nan")) for n in (1 << 10, 1 << 12, 1 << 14, 1 << 16)]
    del junk


def test_strided_convolutions_of_maps_smaller_than_their_stride_run_in_fp32():
    """oneDNN's bf16 weight gradient of a stride-2 convolution on a map narrower than 2 px reads uninitialised
    memory (inf/nan/1e18, different every time): such calls run in fp32, the others stay bf16."""
    from ld_core.engine.mixed_precision import keep_small_strided_fp32

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(16, 16, 3, 2, 1))
    assert keep_small_strided_fp32(model, "cpu") == 1 and keep_small_strided_fp32(model, "cpu") == 0
    conv = model[0]
    for shape, dtype in (((2, 16, 4, 1), torch.float32), ((2, 16, 1, 4), torch.float32),
                         ((2, 16, 4, 4), torch.bfloat16)):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert conv(torch.randn(shape)).dtype == dtype, shape
    x = torch.randn(2, 16, 4, 1)
    with torch.no_grad():
        exact = conv(x)
    grads = []
    for _ in range(6):
        conv.zero_grad()
        _poison_free_memory()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = conv(x)
        torch.testing.assert_close(y, exact)
        y.pow(2).sum().backward()
        grads.append(conv.weight.grad.clone())
    assert all(torch.isfinite(g).all() and torch.equal(g, grads[0]) for g in grads)


def test_bf16_gradients_at_the_tiny_scale_are_finite_and_repeatable(mmdet_scope):
    """The tiny profile's 64-px inputs give the FPN's last extra convolution a 1 x 1 input at stride 2: before the
    fix, six identical steps gave first gradient norms such as 0.11, inf, nan, 0.79 (issue 30)."""
    from mmdet.registry import MODELS

    from ld_core.engine import enable_mixed_precision

    torch.manual_seed(0)
    model = MODELS.build(tiny_gfl_cfg())
    inputs, samples = make_batch(4, size=64)

    def grad_norm() -> float:
        model.zero_grad()
        _poison_free_memory()
        losses = model.loss(inputs, samples)
        sum(sum(v) if isinstance(v, (list, tuple)) else v for v in losses.values()).backward()
        return float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()
                                                           if p.grad is not None])))

    fp32 = grad_norm()
    enable_mixed_precision(model)
    norms = [grad_norm() for _ in range(6)]
    assert all(n == norms[0] for n in norms), norms
    assert norms[0] == pytest.approx(fp32, rel=0.1)
