"""`python -m ld_core bench profile`: where a training step's time goes, and its convolution bound (CPU)."""
from __future__ import annotations

import contextlib
import io
import json
import os

import pytest

from ld_core import cli
from ld_core.commands import step_profile

ARGS = ["bench", "profile", "--scale", "tiny", "--image-size", "64", "64", "--batch", "2", "--warmup", "1",
        "--steps", "2", "--threads", "1"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    import torch

    out = tmp_path_factory.mktemp("profile") / "profile.json"
    threads, env = torch.get_num_threads(), dict(os.environ)
    stdout = io.StringIO()
    try:
        with contextlib.redirect_stdout(stdout):
            rc = cli.main(ARGS + ["--variant", "plain", "--variant", "fast", "--out", str(out)])  # repeatable
    finally:  # --threads pins this process; give the rest of the test session its threads back
        torch.set_num_threads(threads)
        os.environ.clear()
        os.environ.update(env)
    return rc, stdout.getvalue(), json.loads(out.read_text())


def test_shares_sum_to_one_and_the_bound_is_below_the_step(report):
    rc, text, res = report
    assert rc == 0 and set(res["variants"]) == {"plain", "fast"}
    for name, r in res["variants"].items():
        assert sum(r["shares"].values()) == pytest.approx(1.0, abs=1e-6), name
        assert set(r["shares"]) == set(r["ms_per_step"]) == {"convolutions", "casts", "other", "python"}
        assert r["shares"]["convolutions"] > 0 and all(v >= 0 for v in r["shares"].values())
        assert sum(r["ms_per_step"].values()) == pytest.approx(sum(r["profiled_step_ms"]) / 2, rel=1e-6)
        assert len(r["other_top"]) == step_profile.TOP_OTHER and r["other_rest_share"] >= 0
        assert sum(o["share"] for o in r["other_top"]) + r["other_rest_share"] == \
            pytest.approx(r["shares"]["other"], abs=1e-9)
        assert len(r["step_times_s"]) == len(r["profiled_step_ms"]) == 2 and r["median_step_s"] > 0
        conv = r["conv"]
        assert conv["calls_per_step"] > 0 and conv["forward_gflop"] > 0 and conv["backward_gflop"] > 0
        assert conv["throughput_gflops"] > 0 and len(conv["measured"]) == step_profile.MEASURED_CONVS
        assert 0 < conv["bound_ms"] < 1e3 * r["median_step_s"], name
        assert conv["step_over_bound"] == pytest.approx(1e3 * r["median_step_s"] / conv["bound_ms"])
        assert r["casts_per_step"] == pytest.approx(sum(c["per_step"] for c in r["casts_by_dtype"].values()))
    plain, fast = res["variants"]["plain"], res["variants"]["fast"]
    # the fast path casts to bf16 and runs its convolutions in bf16; the plain student casts nothing to bf16
    assert fast["casts_by_dtype"]["float32->bfloat16"]["per_step"] > 0 and fast["mixed_precision"]
    assert not any("bfloat16" in k for k in plain["casts_by_dtype"])
    assert set(plain["conv"]["gflop_by_dtype"]) == {"float32"}  # fast: bf16 but for strided 1x1 maps (fp32)
    assert fast["conv"]["gflop_by_dtype"]["bfloat16"] > 0.95 * fast["conv"]["gflop"]
    # LD adds the teacher's forward-only convolutions: more forward FLOPs, the same backward ones
    assert fast["conv"]["forward_gflop"] > plain["conv"]["forward_gflop"]
    assert fast["conv"]["backward_gflop"] == pytest.approx(plain["conv"]["backward_gflop"])
    for key in ("device", "torch", "mmdet", "threads", "cpu", "load_avg", "scale", "image_size", "batch", "steps",
                "warmup", "seed"):
        assert key in res
    assert res["threads"] == 1 and res["image_size"] == [64, 64] and res["cpu"]["model"]
    assert isinstance(res["cpu"]["bf16_hardware"], bool) and isinstance(res["cpu"]["mkldnn_bf16"], bool)
    for r in res["variants"].values():
        assert r["profiler_ms_per_step"] == pytest.approx(1e3 * (r["profiled_median_step_s"] - r["median_step_s"]))
    for word in ("convolutions alone would take", "casts per step", "plain", "fast", "python"):
        assert word in text


def test_a_known_step_is_classified_exactly():
    """bf16 autocast conv + fp32 max-pool: 4 casts to bf16 (input, weight, bias; the gradient of .float()), 3 back
    (the gradients of weight and bias, the output's .float()); the pool forward and backward named."""
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    torch.manual_seed(0)
    conv, x = torch.nn.Conv2d(3, 4, 3), torch.randn(2, 3, 16, 16)
    records, remove = step_profile.record_convolutions(conv)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        with record_function(step_profile.STEP_RANGE):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                y = conv(x)
            torch.nn.functional.max_pool2d(y.float(), 2).sum().backward()
    remove()
    res = step_profile.summarise_profile(prof.events(), 1)
    assert {k: v["per_step"] for k, v in res["casts_by_dtype"].items()} == \
        {"float32->bfloat16": 4, "bfloat16->float32": 3}
    assert sum(res["shares"].values()) == pytest.approx(1.0) and res["shares"]["convolutions"] > 0
    names = [o["name"] for o in res["other_top"]]
    assert "aten::max_pool2d" in names and "MaxPool2DWithIndicesBackward0" in names
    ((key, calls),) = records.items()
    shape = dict(key)
    assert calls == 1 and (shape["dtype"], shape["weight_grad"], shape["input_grad"]) == ("bfloat16", True, False)
    fwd = 2 * 3 * 4 * 3 * 3 * 14 * 14 * 2
    assert step_profile.conv_flops(shape) == (fwd, fwd)  # weight gradient only: x needs none


@pytest.mark.parametrize("extra, words", [(["--warmup", "0"], "--warmup must be at least 1 for a profile"),
                                         (["--variant", "ours2"], "invalid choice"),
                                         (["--batch", "0"], "--batch must be at least 1")])
def test_bad_arguments_give_one_line_errors(capsys, extra, words):
    assert cli.main(ARGS + extra) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and words in err and captured.out == ""
