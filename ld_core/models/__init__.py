"""LD components registered into mmdet's registries (import this module via ``custom_imports``)."""
from .batched_atss import BatchedGFLHead
from .distribution_heads import CenterDistanceBBoxCoder, DistATSSHead, DistFCOSHead, DistRetinaHead
from .distiller import LocalizationDistiller
from .ld_distribution_heads import LDDistATSSHead, LDDistFCOSHead, LDDistRetinaHead
from .ld_gfl_head import LDGFLHead
from .ld_loss import LocalizationDistillationLoss

__all__ = ["BatchedGFLHead", "LocalizationDistillationLoss", "LDGFLHead", "LocalizationDistiller",
           "CenterDistanceBBoxCoder", "DistRetinaHead", "DistFCOSHead", "DistATSSHead", "LDDistRetinaHead", "LDDistFCOSHead", "LDDistATSSHead"]
