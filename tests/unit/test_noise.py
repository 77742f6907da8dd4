"""`ld_core noise`: seed spread of COCO AP split into a training and an evaluation (val size) part.

Fixture: a 16-image synthetic val split, two runs (the GFocal R-18 baseline and its LD student, resolved by the
real config builder at the tiny scale) x two seeds, random weights whose box branch is set to fixed-size boxes
(so the random detectors get a small but non-zero AP). The command runs once, through the real command line.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import statistics
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
RUNS = ("gfl_r18", "gfl_r18_ld_r101")
SEEDS = (0, 1)
PAIR = "gfl_r18_ld_r101:gfl_r18"
NUM_VAL = 16
SPLITS = 10


def _set_head(state: dict, gen: "torch.Generator") -> dict:
    """Boxes of a seed-dependent fixed size (edge = 0.7..2 strides) and image-dependent random scores."""
    bins = state["bbox_head.gfl_reg.bias"].numel() // 4
    bias = torch.full((4, bins), -20.0)
    for edge in range(4):
        t = 0.7 + 1.3 * torch.rand(1, generator=gen).item()
        lo = int(math.floor(t))
        bias[edge, lo], bias[edge, lo + 1] = math.log(max(1 - (t - lo), 1e-6)), math.log(max(t - lo, 1e-6))
    state["bbox_head.gfl_reg.bias"] = bias.reshape(-1)
    state["bbox_head.gfl_reg.weight"] = torch.randn(state["bbox_head.gfl_reg.weight"].shape, generator=gen) * 0.02
    state["bbox_head.gfl_cls.weight"] = torch.randn(state["bbox_head.gfl_cls.weight"].shape, generator=gen) * 0.1
    return state


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import ConfigDict

    import ld_core.models  # noqa: F401
    from ld_core.config.resolve import config_text
    from ld_core.config.builder import build_run_config
    from ld_core.student import student_only
    from ld_core.config.matrix import load_matrix
    from ld_core.config.scale import load_scale
    from ld_core.data.synthetic import CLASSES, generate

    register_all_modules(init_default_scope=True)
    tmp = tmp_path_factory.mktemp("noise")
    results = tmp / "results"
    generate(results / "data" / "synthetic", seed=0, num_train=1, num_val=NUM_VAL, image_size=64, max_objects=3,
             class_colour=True)
    matrix = load_matrix(ROOT / "configs" / "experiments.yaml")
    scale = load_scale(ROOT / "configs" / "scales" / "tiny.yaml")
    dirs = []
    for k, run_id in enumerate(RUNS):
        run = matrix.run(run_id)
        for seed in SEEDS:
            teacher = dict(teacher_config=str(tmp / "no_teacher.py"), teacher_ckpt=None) if run.teacher else {}
            cfg = build_run_config(run, seed, scale, results_dir=results, classes=CLASSES, **teacher)
            cfg["model"]["test_cfg"].update(score_thr=0.0, max_per_img=100)
            folder = results / "runs" / run_id / f"seed{seed}"
            folder.mkdir(parents=True)
            (folder / "config.py").write_text(config_text(cfg))
            torch.manual_seed(100 * k + seed)
            model = MODELS.build(ConfigDict(student_only(cfg)["model"]))
            model.init_weights()
            state = _set_head(model.state_dict(), torch.Generator().manual_seed(100 * k + seed))
            torch.save({"state_dict": {n: v.detach().clone() for n, v in state.items()}, "meta": {}},
                       folder / "checkpoint.pth")
            dirs.append(folder)
    return dict(tmp=tmp, dirs=dirs, ann=results / "data/synthetic/coco/annotations/instances_val.json")


def _cli(argv):
    """``python -m ld_core`` in-process: (exit status, stdout, stderr)."""
    from ld_core.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def result(setup):
    out = setup["tmp"] / "noise.json"
    start = time.perf_counter()
    rc, stdout, stderr = _cli(["noise", "--runs", *map(str, setup["dirs"]), "--out", str(out), "--splits", str(SPLITS),
                               "--seed", "3", "--threads", "1", "--pairs", PAIR])
    seconds = time.perf_counter() - start
    assert rc == 0, stderr[-3000:]
    print(f"\n[test_noise] noise command: {seconds:.1f} s\n{stdout}")
    return json.loads(out.read_text()), stdout, seconds


# --------------------------------------------------------------------------------------- the command


def test_json_has_the_keys(result, setup):
    data, stdout, _ = result
    assert {"metric", "n_images", "half_sizes", "image_ids", "splits", "model", "dirs", "runs", "pairs",
            "timing"} <= set(data)
    assert data["n_images"] == NUM_VAL and data["half_sizes"] == [NUM_VAL // 2, NUM_VAL - NUM_VAL // 2]
    assert len(data["dirs"]) == len(RUNS) * len(SEEDS)
    for d in data["dirs"]:
        assert {"dir", "run", "seed", "config_seed", "ann_file", "n_detections", "ap_full", "ap_halves",
                "eval_se_split_half", "inference_seconds", "eval_seconds"} <= set(d)
        assert d["run"] in RUNS and d["seed"] == f"seed{d['config_seed']}" and len(d["ap_halves"]) == SPLITS
        assert d["n_detections"] > 0 and 0 <= d["ap_full"] <= 100
    assert any(d["ap_full"] > 0 for d in data["dirs"]), "fixture detectors should reach a non-zero AP"
    assert sorted(data["runs"]) == sorted(RUNS) and list(data["pairs"]) == [PAIR]
    keys = {"var_full", "var_half", "var_train", "var_eval", "sd_full", "sd_train", "sd_eval", "frac_eval",
            "eval_constant_c", "var_train_raw", "var_eval_raw", "half_to_full_ratio", "clipped", "n_seeds", "seeds"}
    for block in (*data["runs"].values(), *data["pairs"].values()):
        assert keys <= set(block) and block["n_seeds"] == 2 and block["seeds"] == ["seed0", "seed1"]
    assert {"inference_seconds", "cocoeval_seconds", "subset_ap_calls", "seconds_per_subset_ap",
            "fresh_cocoeval_seconds_per_half", "total_seconds"} <= set(data["timing"])
    assert data["timing"]["subset_ap_calls"] == len(data["dirs"]) * (1 + 2 * SPLITS)
    assert stdout.startswith("[noise]") and all(name in stdout for name in (*RUNS, PAIR))


def test_halves_partition_the_image_ids(result, setup):
    from ld_core.evaluation.seed_spread import make_splits

    data, _, _ = result
    gt_ids = sorted(img["id"] for img in json.loads(setup["ann"].read_text())["images"])
    assert data["image_ids"] == gt_ids
    halves = data["splits"]["halves"]
    assert data["splits"] == dict(count=SPLITS, seed=3, halves=halves) and len(halves) == SPLITS
    for h in halves:
        assert not set(h["A"]) & set(h["B"]) and sorted(h["A"] + h["B"]) == gt_ids
        assert [len(h["A"]), len(h["B"])] == data["half_sizes"]
    assert len({tuple(h["A"]) for h in halves}) > 1  # random, not one split repeated
    again = make_splits(gt_ids, SPLITS, 3)
    assert [dict(A=a, B=b) for a, b in again] == halves  # seeded: the same halves for every folder and call
    assert make_splits(gt_ids, SPLITS, 4) != again


def test_variances_and_the_decomposition(result):
    data, _, _ = result
    by = {(d["run"], d["seed"]): d for d in data["dirs"]}

    def check(block, full, halves):
        assert block["var_full"] == pytest.approx(statistics.variance(full), rel=1e-9, abs=1e-12)
        per_half = [statistics.variance([h[j][side] for h in halves]) for j in range(SPLITS) for side in (0, 1)]
        assert block["var_half"] == pytest.approx(statistics.fmean(per_half), rel=1e-9, abs=1e-12)
        for key in ("var_full", "var_half", "var_train", "var_eval"):
            assert block[key] >= 0
        assert block["var_train"] + block["var_eval"] == pytest.approx(block["var_full"], rel=1e-12, abs=1e-15)
        assert block["half_to_full_ratio"] == pytest.approx(2.0)
        if block["clipped"] is None:
            assert block["var_eval"] == pytest.approx(block["var_half"] - block["var_full"])
            assert block["var_train_raw"] == block["var_train"] and block["var_eval_raw"] == block["var_eval"]
        elif block["clipped"] == "train":
            assert block["var_train_raw"] < 0 and block["var_train"] == 0 and block["var_eval"] == block["var_full"]
        else:
            assert block["clipped"] == "eval" and block["var_eval_raw"] < 0 and block["var_eval"] == 0
        assert block["sd_full"] == pytest.approx(math.sqrt(block["var_full"]))
        assert block["eval_constant_c"] == pytest.approx(block["var_eval"] * NUM_VAL)
        if block["var_full"] > 0:
            assert 0 <= block["frac_eval"] <= 1

    for run, block in data["runs"].items():
        dirs = [by[(run, s)] for s in block["seeds"]]
        assert block["ap_per_seed"] == [d["ap_full"] for d in dirs]
        check(block, [d["ap_full"] for d in dirs], [d["ap_halves"] for d in dirs])
    assert any(b["var_full"] > 0 for b in data["runs"].values())

    pair = data["pairs"][PAIR]
    a, b = PAIR.split(":")
    assert pair["a"] == a and pair["b"] == b
    diffs = [by[(a, s)]["ap_full"] - by[(b, s)]["ap_full"] for s in pair["seeds"]]
    assert pair["diff_per_seed"] == pytest.approx(diffs)
    diff_halves = [[[xa - ya, xb - yb] for (xa, xb), (ya, yb) in zip(by[(a, s)]["ap_halves"], by[(b, s)]["ap_halves"])]
                   for s in pair["seeds"]]
    check(pair, diffs, diff_halves)
    for s, h in zip(pair["seeds"], diff_halves):
        assert pair["eval_se_split_half_per_seed"][s] == pytest.approx(statistics.stdev([(x - y) / 2 for x, y in h]))

    for d in data["dirs"]:  # split-half standard error: sd over splits of (AP_A - AP_B) / 2
        assert d["eval_se_split_half"] >= 0
        assert d["eval_se_split_half"] == pytest.approx(statistics.stdev([(x - y) / 2 for x, y in d["ap_halves"]]))


def test_full_split_ap_is_the_ap_of_ld_core_evaluate(result, setup, tmp_path):
    """Same student, pipeline and pycocotools AP as `ld_core evaluate` (which reports mmdet's 3 decimals)."""
    data, _, _ = result
    best = max(data["dirs"], key=lambda d: d["ap_full"])
    rc, _, stderr = _cli(["evaluate", "--config", str(Path(best["dir"]) / "config.py"),
                          "--checkpoint", str(Path(best["dir"]) / "checkpoint.pth"), "--out", str(tmp_path / "m.json")])
    assert rc == 0, stderr[-2000:]
    reported = json.loads((tmp_path / "m.json").read_text())["metrics"]["AP"]
    assert reported == pytest.approx(round(100 * round(best["ap_full"] / 100, 3), 2), abs=1e-9)


def test_inference_gives_the_detections_of_the_mmdet_runner(result, tmp_path):
    """The in-memory detections == what mmengine's Runner (the `ld_core evaluate` path) dumps for CocoMetric."""
    import copy

    from mmengine.config import Config
    from mmengine.runner import Runner

    from ld_core.commands.noise import load_config
    from ld_core.evaluation.subset_ap import load_gt
    from ld_core.models.inference import coco_detections

    data, _, _ = result
    folder = Path(max(data["dirs"], key=lambda d: d["ap_full"])["dir"])
    student, ann = load_config(folder / "config.py")
    ours, _, _ = coco_detections(student, folder / "checkpoint.pth", load_gt(ann))
    runner_cfg = Config(copy.deepcopy(student.cfg))
    for key in ("train_dataloader", "train_cfg", "optim_wrapper", "param_scheduler"):
        runner_cfg.pop(key, None)
    runner_cfg.load_from = str(folder / "checkpoint.pth")
    runner_cfg.work_dir = str(tmp_path / "work")
    # a fresh visualizer: mmengine keeps one instance per name per process (an earlier Runner's points to its
    # removed work dir)
    runner_cfg.visualizer = dict(type="DetLocalVisualizer", vis_backends=[dict(type="LocalVisBackend")],
                                 name=f"noise-test-{tmp_path.name}")
    runner_cfg.test_evaluator = dict(type="CocoMetric", ann_file=str(ann), metric="bbox", format_only=True,
                                     outfile_prefix=str(tmp_path / "res"))
    Runner.from_cfg(runner_cfg).test()
    theirs = json.loads((tmp_path / "res.bbox.json").read_text())

    def key(det):
        return det["image_id"], det["category_id"], round(det["score"], 5), [round(v, 2) for v in det["bbox"]]

    assert len(ours) == len(theirs) > 0
    for a, b in zip(sorted(ours, key=key), sorted(theirs, key=key)):
        assert (a["image_id"], a["category_id"]) == (b["image_id"], b["category_id"])
        assert a["score"] == pytest.approx(b["score"], abs=1e-6) and a["bbox"] == pytest.approx(b["bbox"], abs=1e-3)


# --------------------------------------------------------------------------------------- pieces alone


def test_subset_ap_equals_a_fresh_cocoeval_on_the_subset(setup):
    """Accumulating a subset of one full-split evaluation == a COCOeval restricted to the subset."""
    import numpy as np

    from ld_core.evaluation.seed_spread import make_splits
    from ld_core.evaluation.subset_ap import SubsetAP, fresh_coco_ap, load_gt

    gt = load_gt(setup["ann"])
    rng = np.random.default_rng(0)
    dets = []  # jittered ground truth with random scores, a few false positives: a mid-range AP
    for ann in gt.dataset["annotations"]:
        x, y, w, h = ann["bbox"]
        j = rng.normal(0, 0.15, 4) * [w, h, w, h]
        dets.append(dict(image_id=ann["image_id"], category_id=ann["category_id"], score=float(rng.uniform()),
                         bbox=[x + j[0], y + j[1], max(w + j[2], 1.0), max(h + j[3], 1.0)]))
        dets.append(dict(image_id=ann["image_id"], category_id=int(rng.choice(gt.getCatIds())),
                         score=float(rng.uniform(0, 0.5)), bbox=[float(v) for v in rng.uniform(0, 40, 4)]))
    cats = gt.getCatIds()
    scorer = SubsetAP(gt, dets, cats)
    full = scorer.ap()
    assert 10 < full < 100 and full == pytest.approx(fresh_coco_ap(gt, dets, cats, gt.getImgIds()), abs=1e-12)
    for a, b in make_splits(gt.getImgIds(), 3, 1):
        for half in (a, b):
            assert scorer.ap(half) == pytest.approx(fresh_coco_ap(gt, dets, cats, half), abs=1e-12)
    assert SubsetAP(gt, [], cats).ap() == 0.0  # no detection: AP 0, as `ld_core evaluate`


def test_decompose_known_answers():
    from ld_core.evaluation.seed_spread import decompose
    from ld_core.errors import ConfigError

    # var_train 1, c 40, N 20 (halves of 10): var_full = 1 + 2, var_half = 1 + 4
    d = decompose(3.0, 5.0, 20, (10, 10))
    assert d["var_train"] == pytest.approx(1.0) and d["var_eval"] == pytest.approx(2.0)
    assert d["eval_constant_c"] == pytest.approx(40.0) and d["clipped"] is None
    assert d["frac_eval"] == pytest.approx(2 / 3) and d["sd_eval"] == pytest.approx(math.sqrt(2))
    # odd N: halves 10 + 11, the half variance is the mean of c/10 and c/11
    t, c = 0.5, 33.0
    d = decompose(t + c / 21, t + c * (1 / 10 + 1 / 11) / 2, 21, (10, 11))
    assert d["var_train"] == pytest.approx(t) and d["eval_constant_c"] == pytest.approx(c)
    # halves less spread than the full split: no evaluation part seen
    d = decompose(2.0, 1.5, 20, (10, 10))
    assert d["clipped"] == "eval" and d["var_eval"] == 0 and d["var_train"] == 2.0 and d["var_eval_raw"] == -0.5
    # more than twice the full variance on halves: all of it evaluation
    d = decompose(1.0, 3.0, 20, (10, 10))
    assert d["clipped"] == "train" and d["var_train"] == 0 and d["var_eval"] == 1.0 and d["var_train_raw"] == -1.0
    d = decompose(0.0, 0.0, 20, (10, 10))
    assert d["var_train"] == d["var_eval"] == 0 and d["frac_eval"] is None
    with pytest.raises(ConfigError):
        decompose(1.0, 2.0, 20, (10, 9))


def test_split_halves_recover_simulated_training_and_evaluation_noise():
    """Seeds = a training offset (sd 1) + per-image noise (sd sqrt(N)): var_train 1, var_eval 1 at N images."""
    import numpy as np

    from ld_core.evaluation.seed_spread import make_splits, variance_block

    n_img, n_seeds = 40, 400
    rng = np.random.default_rng(0)
    offsets = rng.normal(0, 1.0, n_seeds)
    per_image = offsets[:, None] + rng.normal(0, math.sqrt(n_img), (n_seeds, n_img))
    ids = list(range(100, 100 + n_img))
    splits = make_splits(ids, 30, 0)
    col = {i: n for n, i in enumerate(ids)}
    full = {s: float(per_image[s].mean()) for s in range(n_seeds)}
    halves = {s: [(float(per_image[s, [col[i] for i in a]].mean()), float(per_image[s, [col[i] for i in b]].mean()))
                  for a, b in splits] for s in range(n_seeds)}
    d = variance_block(full, halves, n_img, (20, 20))
    assert d["var_train"] == pytest.approx(1.0, rel=0.3) and d["var_eval"] == pytest.approx(1.0, rel=0.3)
    assert d["clipped"] is None


# --------------------------------------------------------------------------------------- bad input


def _assert_one_line(rc, stderr, *needles):
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error: "), stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_bad_inputs_are_one_line_errors(setup, tmp_path):
    import shutil

    dirs = [str(d) for d in setup["dirs"]]
    out = tmp_path / "noise.json"
    missing = tmp_path / "runs" / "gfl_r18" / "seed7"
    _assert_one_line(*_cli(["noise", "--runs", *dirs, str(missing), "--out", str(out)])[::2], str(missing),
                     "does not exist")
    no_cfg = tmp_path / "runs" / "x" / "seed0"
    no_cfg.mkdir(parents=True)
    shutil.copy(setup["dirs"][0] / "checkpoint.pth", no_cfg / "checkpoint.pth")
    _assert_one_line(*_cli(["noise", "--runs", str(no_cfg), "--out", str(out)])[::2], str(no_cfg / "config.py"))
    no_ckpt = tmp_path / "runs" / "y" / "seed0"
    no_ckpt.mkdir(parents=True)
    shutil.copy(setup["dirs"][0] / "config.py", no_ckpt / "config.py")
    _assert_one_line(*_cli(["noise", "--runs", str(no_ckpt), "--out", str(out)])[::2], str(no_ckpt / "checkpoint.pth"))
    _assert_one_line(*_cli(["noise", "--runs", *dirs, "--out", str(out), "--pairs", "gfl_r18:nope"])[::2],
                     "'nope'", "not among the --runs")
    _assert_one_line(*_cli(["noise", "--runs", *dirs, "--out", str(out), "--pairs", "gfl_r18"])[::2], "RUN_A:RUN_B")
    _assert_one_line(*_cli(["noise", "--runs", *dirs, "--out", str(out), "--splits", "0"])[::2], "--splits")
    _assert_one_line(*_cli(["noise", "--runs", dirs[0], dirs[0], "--out", str(out)])[::2], "given twice")
    assert not out.exists()
