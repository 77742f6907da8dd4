"""Operators registered into mmengine's registries (imported by resolved configs via ``custom_imports``)."""
from .deform_conv import TorchDeformConv2dPack, deform_conv2d_torch

__all__ = ["TorchDeformConv2dPack", "deform_conv2d_torch"]
