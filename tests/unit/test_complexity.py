"""Table 3's #param. and FLOPs of the R-50-FPN detectors, with and without the distribution branch."""
from __future__ import annotations

import argparse
import json

import pytest

# (detector, distribution): (paper params M, paper GFLOPs)
PAPER = {("retinanet", False): (37.74, 239.32), ("retinanet", True): (39.07, 267.64),
         ("fcos", False): (32.02, 200.50), ("fcos", True): (32.17, 203.60),
         ("atss", False): (32.07, 205.21), ("atss", True): (32.22, 208.36),
         ("gfl", False): (32.22, 208.31), ("gfl", True): (32.22, 208.31)}


@pytest.mark.parametrize("detector,distribution", list(PAPER))
def test_trainable_params_equal_the_paper(detector, distribution):
    from ld_core.commands.complexity import complexity

    result = complexity(detector, distribution, flops=False)
    assert abs(result["params_M"] - PAPER[detector, distribution][0]) <= 0.01, result


def test_distribution_branch_adds_exactly_the_reg_conv():
    from ld_core.commands.complexity import complexity

    extra = {"retinanet": 1_327_680, "fcos": 147_520, "atss": 147_520, "gfl": 0}
    for detector, params in extra.items():
        stock = complexity(detector, False, flops=False)["params"]
        assert complexity(detector, True, flops=False)["params"] - stock == params, detector


@pytest.mark.slow
@pytest.mark.parametrize("detector,distribution", list(PAPER))
def test_flops_within_one_percent_of_the_paper(detector, distribution, tmp_path):
    from ld_core.commands import complexity

    parser = argparse.ArgumentParser()
    complexity.add_arguments(parser)
    out = tmp_path / "c.json"
    argv = ["--detector", detector, "--out", str(out)] + (["--distribution"] if distribution else [])
    assert complexity.run(parser.parse_args(argv)) == 0
    result = json.loads(out.read_text())
    paper_params, paper_flops = PAPER[detector, distribution]
    assert abs(result["GFLOPs"] / paper_flops - 1) < 0.01, result
    assert abs(result["params_M"] - paper_params) <= 0.01
