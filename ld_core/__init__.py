"""ld_core: Localization Distillation on mmdetection."""
from .files import load_yapf_grammar

load_yapf_grammar()  # before anything imports mmengine: jobs started together must not race on yapf's cache
