"""Mixed-precision dtypes the training engine supports (:mod:`ld_core.engine.mixed_precision`). Torch-free: the
scale profile check (:mod:`ld_core.config.scale`) reads them when the Snakefile is parsed."""

MIXED_PRECISION_DTYPES = ("bfloat16",)  # fp16 would need a loss scaler
