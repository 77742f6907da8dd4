"""ld_core.ops: the torch deformable convolution equals mmcv's DeformConv2dPack (forward and gradients)."""
from __future__ import annotations

import pytest
import torch

from mmcv.ops import DeformConv2dPack

from ld_core.ops import TorchDeformConv2dPack


@pytest.mark.parametrize("channels,size,groups,deform_groups,stride", [
    (16, 9, 1, 1, 1), (16, 8, 4, 1, 2), (8, 7, 1, 2, 1), (8, 3, 1, 1, 1), (8, 5, 2, 2, 2)])
def test_torch_dcn_equals_mmcv(channels, size, groups, deform_groups, stride):
    torch.manual_seed(0)
    ref = DeformConv2dPack(channels, channels, 3, stride=stride, padding=1, groups=groups,
                           deform_groups=deform_groups)
    torch.nn.init.normal_(ref.conv_offset.weight, std=0.5)  # offsets of several pixels, some outside the map
    ours = TorchDeformConv2dPack(channels, channels, 3, stride=stride, padding=1, groups=groups,
                                 deform_groups=deform_groups)
    ours.load_state_dict(ref.state_dict())  # identical parameters and keys
    x = torch.randn(2, channels, size, size, requires_grad=True)
    outs, grads = [], []
    for module in (ref, ours):
        y = module(x)
        outs.append(y)
        grads.append(torch.autograd.grad(y.square().sum(), [x, module.weight, module.conv_offset.weight]))
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-4, atol=1e-5)
    for g_ours, g_ref in zip(grads[1], grads[0]):
        torch.testing.assert_close(g_ours, g_ref, rtol=1e-4, atol=1e-4 * g_ref.abs().max().item())


def test_registered_for_mmdet_backbones():
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmdet.utils import register_all_modules

    register_all_modules()
    backbone = MMDET_MODELS.build(dict(type="ResNet", depth=50, base_channels=8, out_indices=(3,),
                                       dcn=dict(type="DCNTorch", deform_groups=1, fallback_on_stride=False),
                                       stage_with_dcn=(False, False, True, True)))
    assert any(isinstance(m, TorchDeformConv2dPack) for m in backbone.modules())
    out = backbone(torch.randn(1, 3, 64, 64))
    assert out[0].shape == (1, 256, 2, 2)


def test_from_scratch_init_keeps_offsets_zero_and_gradients_sane():
    """mmdet's from-scratch Kaiming init must not randomise the offsets (X-101-DCN diverged: grad norm 4e13)."""
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmdet.utils import register_all_modules

    register_all_modules()
    torch.manual_seed(0)
    backbone = MMDET_MODELS.build(dict(type="ResNeXt", depth=50, groups=8, base_width=4, base_channels=16,
                                       out_indices=(3,), dcn=dict(type="DCNTorch", deform_groups=1,
                                                                  fallback_on_stride=False),
                                       stage_with_dcn=(False, False, True, True)))
    backbone.init_weights()
    offsets = [m.conv_offset for m in backbone.modules() if isinstance(m, TorchDeformConv2dPack)]
    assert offsets and all(not o.weight.any() and not o.bias.any() for o in offsets)
    backbone(torch.randn(2, 3, 64, 64))[0].square().mean().backward()
    norm = torch.sqrt(sum((p.grad ** 2).sum() for p in backbone.parameters() if p.grad is not None))
    assert torch.isfinite(norm) and norm < 1e4, norm
