"""Training-loop components registered into mmengine's registries (imported via ``custom_imports``)."""
from .mixed_precision import MixedPrecisionHook, enable_mixed_precision
from .nonfinite import NonFiniteLossHook, NonFiniteTrainingError
from .capped_loop import CappedEpochBasedTrainLoop

__all__ = ["CappedEpochBasedTrainLoop", "MixedPrecisionHook", "NonFiniteLossHook", "NonFiniteTrainingError",
           "enable_mixed_precision"]
