"""LD components registered into mmdet's registries (import this module via ``custom_imports``)."""
from .distiller import LocalizationDistiller
from .ld_gfl_head import LDGFLHead
from .ld_loss import LocalizationDistillationLoss

__all__ = ["LocalizationDistillationLoss", "LDGFLHead", "LocalizationDistiller"]
