"""`python -m ld_core bench train`: stock LD vs ours vs plain GFL (and the bf16 fast path), timed on CPU."""
from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys

import pytest

from helpers import ROOT
from ld_core import cli
from ld_core.commands import bench
from ld_core.commands.bench_variants import BF16_ATOL, BF16_RTOL

ARGS = ["bench", "train", "--scale", "tiny", "--image-size", "64", "64", "--batch", "2", "--warmup", "2", "--steps", "3",
        "--device", "cpu", "--threads", "1"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    import torch

    out = tmp_path_factory.mktemp("bench") / "bench.json"
    threads, env = torch.get_num_threads(), dict(os.environ)
    stdout = io.StringIO()
    try:
        with contextlib.redirect_stdout(stdout):
            rc = cli.main(ARGS + ["--out", str(out)])
    finally:  # --threads pins this process; give the rest of the test session its threads back
        torch.set_num_threads(threads)
        os.environ.clear()
        os.environ.update(env)
    return rc, stdout.getvalue(), json.loads(out.read_text())


def test_all_variants_time_positive_and_report_environment(report):
    rc, text, res = report
    assert rc == 0
    assert set(res["variants"]) == {"stock", "ours", "plain", "fast", "fastplain"}
    for name, r in res["variants"].items():
        assert r["images_per_s"] > 0, name
        assert len(r["step_times_s"]) == 3 and all(t > 0 for t in r["step_times_s"])
        assert r["images_per_s"] == pytest.approx(2 / r["median_step_s"])
        assert r["peak_mem_gib"] is None  # CPU
    for name in ("ours", "fast"):
        assert res["ratio_over_stock"][name] == pytest.approx(
            res["variants"][name]["images_per_s"] / res["variants"]["stock"]["images_per_s"])
    assert res["ratio_ours_over_stock"] == res["ratio_over_stock"]["ours"]
    assert set(res["ld_overhead"]) == {"stock", "ours", "fast"} and all(v > 0 for v in res["ld_overhead"].values())
    assert res["ld_overhead"]["fast"] == pytest.approx(
        res["variants"]["fast"]["median_step_s"] / res["variants"]["fastplain"]["median_step_s"])
    assert res["device"].startswith("cpu: ") and res["threads"] == 1
    assert (res["scale"], res["image_size"], res["batch"], res["steps"], res["warmup"], res["gt_per_image"]) == \
        ("tiny", [64, 64], 2, 3, 2, 12)
    for key in ("torch", "mmdet", "mmcv", "mmengine", "cudnn_benchmark", "seed", "passed"):
        assert key in res
    for word in ("images/s", "stock", "ours", "plain", "fastplain", "n/a", "/stock", "PASS", res["mmdet"]):
        assert word in text


def test_first_step_losses_of_stock_and_ours_agree(report):
    _, _, res = report
    check = res["loss_check"]["ours"]
    assert check["reference"] == "stock" and check["rtol"] == 1e-4
    assert check["passed"] and res["passed"]
    stock = res["variants"]["stock"]["first_step_losses"]
    ours = res["variants"]["ours"]["first_step_losses"]
    for name in ("loss_cls", "loss_bbox", "loss_dfl", "loss_ld"):
        assert ours[name] == pytest.approx(stock[name], rel=1e-4, abs=1e-6), name
        assert check["losses"][name]["reference"] == stock[name] and check["losses"][name]["value"] == ours[name]
    assert stock["loss_ld"] > 0
    # the baseline has no LD loss; its GT losses start from the same weights on the same batch
    plain = res["variants"]["plain"]["first_step_losses"]
    assert "loss_ld" not in plain
    assert plain["loss_cls"] == pytest.approx(stock["loss_cls"], rel=1e-4)


def test_fast_path_losses_agree_with_stock_within_bf16_tolerance(report):
    """bf16 convolutions move the first-step losses by less than 2 %, not by exactly zero (the path is on)."""
    _, _, res = report
    check = res["loss_check"]["fast"]
    assert check["passed"] and (check["rtol"], check["atol"]) == (BF16_RTOL, BF16_ATOL)
    assert 0 < check["max_rel_diff"] < 2e-2
    fast, plain = res["variants"]["fast"]["first_step_losses"], res["variants"]["fastplain"]["first_step_losses"]
    assert "loss_ld" not in plain and fast["loss_cls"] == pytest.approx(plain["loss_cls"], rel=1e-6)


def test_failing_check_is_reported():
    ref = dict(loss_cls=1.0, loss_bbox=2.0, loss_dfl=0.5, loss_ld=0.1, loss=3.6)
    bad = dict(ref, loss_ld=0.1002, loss=3.6002)
    check = bench.check_losses(ref, bad, 1e-4, 1e-6, "stock")
    assert not check["passed"] and check["max_rel_diff"] == pytest.approx(2e-3)
    assert bench.check_losses(ref, dict(ref), 1e-4, 1e-6, "stock")["passed"]


@pytest.mark.parametrize("extra, words", [(["--batch", "0"], "--batch must be at least 1"),
                                         (["--scale", "huge"], "invalid choice"),
                                         (["--image-size", "16", "64"], "--image-size")])
def test_bad_arguments_give_one_line_errors(capsys, extra, words):
    args = ARGS + extra
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and words in err


def test_runnable_as_module_with_one_line_error():
    proc = subprocess.run([sys.executable, "-m", "ld_core", *ARGS, "--batch", "0"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: --batch must be at least 1, got 0"
    assert proc.stdout == ""
