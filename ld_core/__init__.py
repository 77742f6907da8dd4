"""ld_core: Localization Distillation on mmdetection."""
