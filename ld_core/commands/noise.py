"""`ld_core noise`: how much of the seed-to-seed spread of COCO AP is evaluation noise, how much training.

Input: run folders ``results/runs/<run>/seed<k>/`` (``--runs``), each with ``config.py`` (a resolved mmdet
config; a distilled one is reduced to its plain student by :mod:`ld_core.models.trained`, as
``ld_core evaluate`` does) and ``checkpoint.pth`` (tensor-only state dict). The *run* of a folder is its
parent's name, its *seed* the folder's own name (``seed0``); runs are compared seed by seed on that name.

What is computed (AP in percent, "points"; variances in points², standard deviations in points):

* **Inference**, once per folder, on the whole validation split of its config, with ``--threads`` threads:
  :func:`ld_core.models.inference.coco_detections` (the computation of ``ld_core evaluate``), kept in memory.
* **AP(S)** for a set ``S`` of image ids: :mod:`ld_core.evaluation.subset_ap` against the config's
  ``test_evaluator.ann_file`` (else the dataset's annotation file); on the full split the ``AP`` of
  ``ld_core evaluate``. ``COCOeval.evaluate`` runs once per folder; a subset's AP is an ``accumulate``
  (about 3 s per folder for 50 splits: inference is the cost).
* **Splits** (:func:`ld_core.evaluation.seed_spread.make_splits`, ``--splits`` halvings, ``--seed``) of the
  ``N`` image ids (every folder must have the same set): the same halves for every folder.
* Per run with ``k >= 2`` seeds: the decomposition of :mod:`ld_core.evaluation.seed_spread` of the variance
  over seeds of AP into ``var_train`` and ``var_eval`` (full split vs halves).
* **Pairs** ``--pairs A:B``: per shared seed ``s``, ``D_s(S) = AP_A,s(S) - AP_B,s(S)``; the same
  decomposition of the variance over seeds of ``D`` (full split vs halves): the training and evaluation
  parts of the paired difference's variance.
* **Per folder, split-half evaluation standard error** of AP at the full size
  (:func:`ld_core.evaluation.seed_spread.split_half_se`): the evaluation error of one AP value as an estimate
  of the model's AP on images like these. The same for each seed of a pair (of ``D``).

Output (``--out``, JSON written atomically; values unrounded except seconds):

* ``n_images`` (N), ``half_sizes`` ([n_A, n_B]), ``image_ids``, ``splits``: ``{count, seed, halves: [{A, B}]}``;
* ``dirs``: per folder ``dir, run, seed, config_seed, ann_file, n_detections, ap_full, ap_halves`` ([[A, B]]
  per split), ``eval_se_split_half``, ``inference_seconds, eval_seconds``;
* ``runs``: per run ``seeds, n_seeds, ap_per_seed, ap_mean, eval_se_split_half_mean`` and, with >= 2 seeds,
  the decomposition: ``var_full, var_half, var_train, var_eval, sd_full, sd_train, sd_eval, frac_eval,
  eval_constant_c`` (c), ``var_train_raw, var_eval_raw, half_to_full_ratio`` (r), ``clipped`` (null, "eval"
  or "train"); with one seed a ``note`` instead;
* ``pairs``: per ``"A:B"`` ``a, b, seeds`` (shared), ``n_seeds, diff_per_seed, diff_mean,
  eval_se_split_half_per_seed`` and the same decomposition keys (of the difference);
* ``timing``: ``inference_seconds, cocoeval_seconds, subset_ap_calls, seconds_per_subset_ap,
  fresh_cocoeval_seconds_per_half`` (one fresh restricted COCOeval, for comparison), ``total_seconds, threads``;
* ``metric``, ``model``: one-line reminders of the definitions.
"""
from __future__ import annotations

import argparse
import re
import statistics
import time
from pathlib import Path
from typing import Dict, List, Sequence

from ..data.dataset_config import validate_dataset_config
from ..errors import ConfigError, DataError, require_dir, require_file
from ..evaluation.seed_spread import make_splits, split_half_se, variance_block
from ..evaluation.subset_ap import SubsetAP, fresh_coco_ap, load_gt
from ..files import atomic_write_json
from ..models.inference import coco_detections
from ..models.trained import read_student_config
from ..threads import pin_threads


# ------------------------------------------------------------------------------------------- inputs


def parse_pair(text: str) -> tuple:
    """``'A:B'`` -> ``('A', 'B')`` (two different, non-empty run ids)."""
    parts = str(text).split(":")
    if len(parts) != 2 or not all(p.strip() for p in parts):
        raise ConfigError(f"noise: --pairs '{text}': expected RUN_A:RUN_B")
    a, b = (p.strip() for p in parts)
    if a == b:
        raise ConfigError(f"noise: --pairs '{text}': a run paired with itself")
    return a, b


def _seed_key(name: str):
    m = re.fullmatch(r"seed(\d+)", name)
    return (0, int(m.group(1)), name) if m else (1, 0, name)


def check_dirs(dirs: Sequence, pairs: Sequence[str] = ()) -> tuple:
    """The folders as ``[{dir, run, seed, config, checkpoint}]`` and the pairs; one-line errors first."""
    entries, seen = [], {}
    if not dirs:
        raise ConfigError("noise: no --runs folders given")
    for d in dirs:
        path = require_dir(d, "run folder")
        config = require_file(path / "config.py", "config file")
        ckpt = require_file(path / "checkpoint.pth", "checkpoint file")
        resolved = path.resolve()
        run, seed = resolved.parent.name, resolved.name
        if (run, seed) in seen:
            raise ConfigError(f"{path}: run '{run}' {seed} given twice (also {seen[(run, seed)]})")
        seen[(run, seed)] = path
        entries.append(dict(dir=str(path), run=run, seed=seed, config=config, checkpoint=ckpt))
    runs = {e["run"] for e in entries}
    parsed = []
    for text in pairs or ():
        a, b = parse_pair(text)
        for r in (a, b):
            if r not in runs:
                raise ConfigError(f"noise: --pairs {a}:{b}: run '{r}' is not among the --runs folders "
                                  f"(given: {', '.join(sorted(runs))})")
        parsed.append((a, b))
    return entries, parsed


def _eval_ann_file(cfg: dict) -> Path:
    ev = cfg.get("test_evaluator") or {}
    if isinstance(ev, list):
        ev = ev[0] if ev else {}
    if ev.get("ann_file"):
        return Path(ev["ann_file"])
    ds = cfg["test_dataloader"]["dataset"]
    return Path(ds.get("data_root") or "") / ds["ann_file"]


def load_config(config_path: Path) -> tuple:
    """``(StudentConfig, GT annotation file)`` of a run's config (:mod:`ld_core.models.trained`); COCO only."""
    student = read_student_config(config_path)
    cfg, meta = student.cfg, student.meta
    if "test_dataloader" not in cfg:
        raise ConfigError(f"{config_path}: config has no test_dataloader")
    ds = cfg["test_dataloader"]["dataset"]
    if meta.get("dataset", "coco") != "coco" or ds.get("type") != "CocoDataset":
        raise ConfigError(f"{config_path}: noise measures COCO AP; the test dataset is {ds.get('type')} "
                          f"({meta.get('dataset', 'coco')})")
    validate_dataset_config(ds)
    return student, _eval_ann_file(cfg)


# ------------------------------------------------------------------------------------------- measurement


def _r(value, nd=4):
    return None if value is None else round(float(value), nd)


def measure_noise(dirs: Sequence, *, splits: int = 50, seed: int = 0, threads: int = 1,
                  pairs: Sequence[str] = ()) -> dict:
    """Everything of the module docstring, as the JSON-ready result."""
    if int(splits) < 1:
        raise ConfigError(f"noise: --splits must be >= 1 (got {splits})")
    entries, pair_list = check_dirs(dirs, pairs)
    pin_threads(threads)
    t0 = time.perf_counter()
    configs = [load_config(e["config"]) for e in entries]  # every config checked before any inference

    gts = [load_gt(ann) for _, ann in configs]
    ids0 = sorted(int(i) for i in gts[0].getImgIds())
    for e, gt in zip(entries, gts):
        ids = sorted(int(i) for i in gt.getImgIds())
        if ids != ids0:
            raise DataError(f"{e['config']}: its validation split ({len(ids)} images) is not the one of "
                            f"{entries[0]['config']} ({len(ids0)} images); all folders need the same images")
    halves = make_splits(ids0, splits, seed)
    n_full, half_sizes = len(ids0), (len(halves[0][0]), len(halves[0][1]))
    with_gt = {int(a["image_id"]) for a in gts[0].dataset.get("annotations", [])}
    for j, (a, b) in enumerate(halves):
        if not with_gt & set(a) or not with_gt & set(b):
            raise DataError(f"{configs[0][1]}: split {j} has a half without any ground-truth box "
                            f"({len(with_gt)} of {n_full} images have one); use more images")

    per_dir, timing = [], dict(inference_seconds=0.0, cocoeval_seconds=0.0, subset_ap_calls=0)
    fresh_seconds = None
    for e, (student, ann), gt in zip(entries, configs, gts):
        dets, cat_ids, seconds = coco_detections(student, e["checkpoint"], gt)
        timing["inference_seconds"] += seconds
        t_eval = time.perf_counter()
        scorer = SubsetAP(gt, dets, cat_ids)
        ap_full = scorer.ap()
        ap_halves = [(scorer.ap(a), scorer.ap(b)) for a, b in halves]
        eval_seconds = time.perf_counter() - t_eval
        timing["cocoeval_seconds"] += eval_seconds
        timing["subset_ap_calls"] += 1 + 2 * len(halves)
        if fresh_seconds is None:  # reference: one fresh COCOeval restricted to a half
            t_fresh = time.perf_counter()
            fresh_coco_ap(gt, dets, cat_ids, halves[0][0])
            fresh_seconds = time.perf_counter() - t_fresh
        if ap_full is None or any(v is None for pair in ap_halves for v in pair):
            raise DataError(f"{ann}: no ground truth of the config's classes in the validation split or one "
                            "of its halves")
        per_dir.append(dict(dir=e["dir"], run=e["run"], seed=e["seed"], config_seed=student.meta.get("seed"),
                            ann_file=str(ann), n_detections=len(dets), ap_full=ap_full, ap_halves=ap_halves,
                            eval_se_split_half=split_half_se(ap_halves), inference_seconds=seconds,
                            eval_seconds=eval_seconds))

    by_run: Dict[str, Dict[str, dict]] = {}
    for d in per_dir:
        by_run.setdefault(d["run"], {})[d["seed"]] = d
    runs = {}
    for run in sorted(by_run):
        seeds = sorted(by_run[run], key=_seed_key)
        full = {s: by_run[run][s]["ap_full"] for s in seeds}
        ses = [by_run[run][s]["eval_se_split_half"] for s in seeds]
        out = dict(seeds=seeds, n_seeds=len(seeds), ap_per_seed=[full[s] for s in seeds],
                   ap_mean=statistics.fmean(full.values()),
                   eval_se_split_half_mean=statistics.fmean(ses) if None not in ses else None)
        if len(seeds) >= 2:
            out.update(variance_block(full, {s: by_run[run][s]["ap_halves"] for s in seeds}, n_full, half_sizes))
        else:
            out["note"] = "one seed: no variance over seeds"
        runs[run] = out

    pair_out = {}
    for a, b in pair_list:
        shared = sorted(set(by_run[a]) & set(by_run[b]), key=_seed_key)
        full = {s: by_run[a][s]["ap_full"] - by_run[b][s]["ap_full"] for s in shared}
        diff_halves = {s: [(xa - ya, xb - yb) for (xa, xb), (ya, yb) in
                           zip(by_run[a][s]["ap_halves"], by_run[b][s]["ap_halves"])] for s in shared}
        out = dict(a=a, b=b, seeds=shared, n_seeds=len(shared), diff_per_seed=[full[s] for s in shared],
                   diff_mean=statistics.fmean(full.values()) if shared else None,
                   eval_se_split_half_per_seed={s: split_half_se(diff_halves[s]) for s in shared})
        if len(shared) >= 2:
            out.update(variance_block(full, diff_halves, n_full, half_sizes))
        else:
            out["note"] = f"{len(shared)} shared seed(s): no variance over seeds"
        pair_out[f"{a}:{b}"] = out

    calls = timing["subset_ap_calls"]
    timing.update(inference_seconds=_r(timing["inference_seconds"], 2),
                  cocoeval_seconds=_r(timing["cocoeval_seconds"], 3),
                  seconds_per_subset_ap=_r(timing["cocoeval_seconds"] / calls, 5) if calls else None,
                  fresh_cocoeval_seconds_per_half=_r(fresh_seconds, 4), total_seconds=_r(time.perf_counter() - t0, 2),
                  threads=int(threads))
    for d in per_dir:
        d.update(ap_halves=[list(pair) for pair in d["ap_halves"]], inference_seconds=_r(d["inference_seconds"], 2),
                 eval_seconds=_r(d["eval_seconds"], 3))
    return dict(metric="COCO bbox AP (percent), pycocotools, maxDets 1000, area all",
                n_images=n_full, half_sizes=list(half_sizes), image_ids=ids0,
                splits=dict(count=len(halves), seed=int(seed), halves=[dict(A=a, B=b) for a, b in halves]),
                model="var_seed(n) = var_train + c/n; var_eval = c/N at the full size; clipped at 0 "
                      "(var_train + var_eval = var_full always)",
                dirs=per_dir, runs=runs, pairs=pair_out, timing=timing)


def summary_lines(result: dict) -> List[str]:
    """A short human-readable summary (stds in AP points)."""
    def f(v, nd=2):
        return "-" if v is None else f"{v:.{nd}f}"

    n, (na, nb) = result["n_images"], result["half_sizes"]
    lines = [f"[noise] {len(result['dirs'])} folder(s), {n} val images, {result['splits']['count']} splits into "
             f"{na}+{nb} (seed {result['splits']['seed']}); sd in AP points"]

    def block(name, d, what):
        if "var_full" not in d:
            return f"  {name}: {d.get('note')}"
        clip = f" (clipped: {d['clipped']} part < 0 set to 0)" if d["clipped"] else ""
        frac = "-" if d["frac_eval"] is None else f"{100 * d['frac_eval']:.0f}%"
        return (f"  {name}: {what}, {d['n_seeds']} seeds: sd over seeds {f(d['sd_full'])} -> training "
                f"{f(d['sd_train'])}, evaluation {f(d['sd_eval'])} (eval share of the variance {frac}){clip}")

    for run, d in result["runs"].items():
        lines.append(block(run, d, f"AP {f(d['ap_mean'])}"))
    for name, d in result["pairs"].items():
        lines.append(block(name, d, f"diff {f(d['diff_mean'])}"))
    lines.append("  split-half eval SE of AP per folder: " +
                 ", ".join(f"{d['run']}/{d['seed']} {f(d['eval_se_split_half'])}" for d in result["dirs"]))
    t = result["timing"]
    lines.append(f"  time: inference {f(t['inference_seconds'], 1)} s, COCOeval {f(t['cocoeval_seconds'], 2)} s "
                 f"({t['subset_ap_calls']} subset APs, {f(1000 * (t['seconds_per_subset_ap'] or 0), 1)} ms each; "
                 f"a fresh COCOeval per half {f(1000 * (t['fresh_cocoeval_seconds_per_half'] or 0), 1)} ms)")
    return lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", nargs="+", required=True, metavar="DIR",
                        help="results/runs/<run>/seed<k>/ folders (config.py + checkpoint.pth)")
    parser.add_argument("--out", required=True, help="noise JSON")
    parser.add_argument("--splits", type=int, default=50, help="random halvings of the validation split")
    parser.add_argument("--seed", type=int, default=0, help="seed of the halvings")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--pairs", nargs="*", default=[], metavar="A:B",
                        help="run ids compared seed by seed (AP(A) - AP(B))")


def run(args: argparse.Namespace) -> int:
    result = measure_noise(args.runs, splits=args.splits, seed=args.seed, threads=args.threads, pairs=args.pairs)
    atomic_write_json(args.out, result)
    print("\n".join(summary_lines(result)))
    return 0
