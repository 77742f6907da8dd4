"""`ld_core noise`: how much of the seed-to-seed spread of COCO AP is evaluation noise, how much training.

Input: run folders ``results/runs/<run>/seed<k>/`` (``--runs``), each with ``config.py`` (a resolved mmdet
config; a distilled one is reduced to its plain student by :mod:`ld_core.models.trained`, as
``ld_core evaluate`` does) and ``checkpoint.pth`` (tensor-only state dict). The *run* of a folder is its
parent's name, its *seed* the folder's own name (``seed0``); runs are compared seed by seed on that name.

Definitions (AP in percent, "points"; variances in points², standard deviations in points):

* **Inference**, once per folder, on the whole validation split of its config: the config's
  ``test_dataloader`` dataset and pipeline, batches of its ``batch_size`` in dataset order,
  ``model.test_step`` on the CPU with ``--threads`` threads (the computation of ``ld_core evaluate``).
  The detections are kept in memory in COCO results format (``image_id``, ``category_id``, ``bbox`` as
  ``[x, y, w, h]``, ``score``); label ``l`` maps to the ``l``-th category id of the classes, as mmdet's
  ``CocoMetric``.
* **AP(S)** for a set ``S`` of image ids: pycocotools' ``COCOeval`` (bbox) against the config's
  ``test_evaluator.ann_file`` (else the dataset's annotation file) with ``params.imgIds = S`` and mmdet's
  ``maxDets = [100, 300, 1000]``: ``stats[0]`` = mean precision over IoU 0.50:0.95, recall, and the
  categories with ground truth in ``S``, area "all", 1000 detections per image. On the full split this is
  the ``AP`` of ``ld_core evaluate``. ``COCOeval.evaluate`` runs once per folder on the full split; a subset's
  AP is ``accumulate`` over that subset's per-image results, area "all" and 1000 detections only (per-image
  matching does not depend on the other images, so this equals a fresh ``COCOeval`` restricted to ``S``; the
  tests check it to 1e-12). Measured (200 images, 4 classes, 100 detections per image, 1 CPU core): 0.9 s for
  the full evaluation, 21 ms per half (a fresh ``COCOeval`` on a half: 0.55-0.63 s), i.e. 3 s per folder for
  50 splits; inference is the cost.
* **Splits**: the ``N`` image ids (every folder must have the same set), permuted ``--splits`` times by
  ``numpy.random.default_rng(--seed)``; half A = the first ``floor(N/2)`` of the permutation, half B = the
  rest (both stored sorted). The same halves for every folder.
* Per run with ``k >= 2`` seeds: ``var_full`` = sample variance (ddof 1) over seeds of AP(full split);
  ``var_half`` = mean over the splits and their two halves of the sample variance over seeds of AP(half).
* **Model**: ``var_seed(n) = var_train + c / n`` for an evaluation set of ``n`` images. With
  ``r = N * (1/n_A + 1/n_B) / 2`` (2 for even ``N``) the two equations ``var_full = var_train + c/N`` and
  ``var_half = var_train + r * c/N`` give ``var_eval = c/N = (var_half - var_full) / (r - 1)`` (the
  evaluation part at the full size) and ``var_train = var_full - var_eval``. **Clipping**: a negative
  ``var_eval`` is set to 0 (``var_train = var_full``, ``clipped = "eval"``), a negative ``var_train`` to 0
  (``var_eval = var_full``, ``clipped = "train"``); so always ``var_train + var_eval = var_full``; the
  unclipped values are kept as ``*_raw``. ``frac_eval = var_eval / var_full``. ``c = var_eval * N``
  predicts the evaluation part for another split size ``n`` as ``c / n``.
* **Pairs** ``--pairs A:B``: per shared seed ``s``, ``D_s(S) = AP_A,s(S) - AP_B,s(S)``; the same
  decomposition of the variance over seeds of ``D`` (full split vs halves): the training and evaluation
  parts of the paired difference's variance.
* **Per folder, split-half evaluation standard error** of AP at the full size: the sample sd (ddof 1) over
  the splits of ``(AP(A) - AP(B)) / 2``. (AP(full) is about the mean of AP(A) and AP(B); if each half has
  variance ``2 s^2``, ``(AP(A) - AP(B)) / 2`` has variance ``s^2``.) It is the evaluation error of one AP
  value as an estimate of the model's AP on images like these; it includes the difficulty of the images
  shared by all seeds, which cancels in the variance over seeds, so it is usually larger than
  ``sqrt(var_eval)``. The same for each seed of a pair (of ``D``).

With ``k`` seeds a sample variance has a relative sd of about ``sqrt(2 / (k - 1))`` (1.0 for 3 seeds), so
each decomposition is a rough estimate; the averaging over splits removes only the split noise of ``var_half``.

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
* ``metric``, ``model``: one-line reminders of the definitions above.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import io
import math
import re
import statistics
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from ..data.dataset_config import validate_dataset_config
from ..data.ground_truth import leave_out_coco_boxes
from ..errors import ConfigError, DataError
from ..files import atomic_write_json
from ..threads import pin_threads

MAX_DETS = [100, 300, 1000]  # mmdet CocoMetric's proposal_nums; AP uses the last


# ------------------------------------------------------------------------------------------- statistics


def sample_var(values: Sequence[float]) -> Optional[float]:
    """Sample variance (ddof 1); ``None`` for fewer than two values."""
    return statistics.variance([float(v) for v in values]) if len(values) >= 2 else None


def sample_sd(values: Sequence[float]) -> Optional[float]:
    """Sample standard deviation (ddof 1); ``None`` for fewer than two values."""
    var = sample_var(values)
    return None if var is None else math.sqrt(var)


def decompose(var_full: float, var_half: float, n_full: int, half_sizes: Sequence[int]) -> dict:
    """Solve ``var(n) = var_train + c/n`` at ``n_full`` and at the halves (see the module docstring)."""
    n_a, n_b = (int(n) for n in half_sizes)
    if n_a < 1 or n_b < 1 or n_a + n_b != int(n_full):
        raise ConfigError(f"noise: halves {n_a} + {n_b} do not partition {n_full} images")
    ratio = int(n_full) * (1.0 / n_a + 1.0 / n_b) / 2.0
    var_full, var_half = float(var_full), float(var_half)
    eval_raw = (var_half - var_full) / (ratio - 1.0)
    train_raw = var_full - eval_raw
    clipped = None
    var_eval, var_train = eval_raw, train_raw
    if eval_raw < 0:
        var_eval, var_train, clipped = 0.0, var_full, "eval"
    elif train_raw < 0:
        var_eval, var_train, clipped = var_full, 0.0, "train"
    return dict(var_full=var_full, var_half=var_half, var_train=var_train, var_eval=var_eval,
                sd_full=math.sqrt(var_full), sd_train=math.sqrt(var_train), sd_eval=math.sqrt(var_eval),
                frac_eval=var_eval / var_full if var_full > 0 else None, eval_constant_c=var_eval * int(n_full),
                var_train_raw=train_raw, var_eval_raw=eval_raw, half_to_full_ratio=ratio, clipped=clipped)


def make_splits(img_ids: Sequence[int], splits: int, seed: int) -> List[tuple]:
    """``splits`` random halves ``(A, B)`` (sorted id lists) of ``img_ids``, from ``default_rng(seed)``."""
    import numpy as np

    ids = np.asarray(sorted(int(i) for i in img_ids), dtype=np.int64)
    if len(ids) < 2:
        raise DataError(f"noise: need at least 2 validation images to split, got {len(ids)}")
    rng = np.random.default_rng(int(seed))
    half = len(ids) // 2
    out = []
    for _ in range(int(splits)):
        perm = ids[rng.permutation(len(ids))]
        out.append((sorted(int(i) for i in perm[:half]), sorted(int(i) for i in perm[half:])))
    return out


# ------------------------------------------------------------------------------------------- COCO AP


@contextlib.contextmanager
def _quiet():
    """Silence pycocotools' prints."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


_GT_CACHE: Dict[str, object] = {}


def load_gt(ann_file) -> "object":
    """A pycocotools ``COCO`` of ``ann_file`` (cached per path, prints silenced)."""
    from pycocotools.coco import COCO

    path = Path(ann_file).resolve()
    if not path.is_file():
        raise DataError(f"{ann_file}: annotation file does not exist")
    stat = path.stat()
    key = f"{path}:{stat.st_mtime_ns}:{stat.st_size}"
    if key not in _GT_CACHE:
        with _quiet():
            _GT_CACHE[key] = COCO(str(path))
            leave_out_coco_boxes(_GT_CACHE[key])  # as `ld_core evaluate` does: the boxes training leaves out
    return _GT_CACHE[key]


class SubsetAP:
    """COCO bbox AP of one set of detections on any subset of the validation images.

    ``COCOeval.evaluate`` runs once on all images; :meth:`ap` accumulates the per-image results of a subset.
    """

    def __init__(self, coco_gt, detections: Sequence[dict], cat_ids: Sequence[int]):
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        with _quiet():
            if detections:
                coco_dt = coco_gt.loadRes(list(detections))
            else:  # loadRes cannot take an empty list: no detection is an AP of 0
                coco_dt = COCO()
                coco_dt.dataset = dict(images=list(coco_gt.dataset["images"]),
                                       categories=copy.deepcopy(coco_gt.dataset["categories"]), annotations=[])
                coco_dt.createIndex()
            ev = COCOeval(coco_gt, coco_dt, "bbox")
            ev.params.catIds = list(cat_ids)
            ev.params.imgIds = sorted(coco_gt.getImgIds())
            ev.params.maxDets = list(MAX_DETS)
            ev.evaluate()
        self._ev = ev
        self._pos = {int(i): n for n, i in enumerate(ev._paramsEval.imgIds)}
        self.img_ids = [int(i) for i in ev._paramsEval.imgIds]

    def ap(self, img_ids: Optional[Sequence[int]] = None) -> Optional[float]:
        """AP in percent on ``img_ids`` (all images by default); ``None`` when no category has ground truth."""
        ev, pe = self._ev, self._ev._paramsEval
        idx = sorted(self._pos[int(i)] for i in (self.img_ids if img_ids is None else img_ids))
        n_img, n_area = len(pe.imgIds), len(pe.areaRng)
        area = list(pe.areaRngLbl).index("all")
        sub = copy.copy(ev)  # evalImgs are laid out [category][area range][image]; keep area "all" only
        sub.evalImgs = [ev.evalImgs[k * n_area * n_img + area * n_img + i] for k in range(len(pe.catIds)) for i in idx]
        params = copy.copy(pe)
        params.imgIds = [pe.imgIds[i] for i in idx]
        params.areaRng, params.areaRngLbl = [pe.areaRng[area]], ["all"]
        params.maxDets = [pe.maxDets[2]]  # COCOeval.summarize's stats[0]: area all, maxDets[2]
        sub._paramsEval, sub.params = params, params
        with _quiet():
            sub.accumulate()
        prec = sub.eval["precision"][:, :, :, 0, 0]
        valid = prec[prec > -1]
        return float(100.0 * valid.mean()) if valid.size else None


def _coco_ap_fresh(coco_gt, detections, cat_ids, img_ids) -> Optional[float]:
    """The same AP from a fresh ``COCOeval`` restricted to ``img_ids`` (a check, and the timing reference)."""
    from pycocotools.cocoeval import COCOeval

    if not detections:
        return 0.0
    with _quiet():
        ev = COCOeval(coco_gt, coco_gt.loadRes(list(detections)), "bbox")
        ev.params.catIds = list(cat_ids)
        ev.params.imgIds = sorted(int(i) for i in img_ids)
        ev.params.maxDets = list(MAX_DETS)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return None if ev.stats[0] < 0 else float(100.0 * ev.stats[0])


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
        path = Path(d)
        if not path.is_dir():
            raise ConfigError(f"{path}: run folder does not exist")
        config, ckpt = path / "config.py", path / "checkpoint.pth"
        if not config.is_file():
            raise ConfigError(f"{config}: config file does not exist")
        if not ckpt.is_file():
            raise ConfigError(f"{ckpt}: checkpoint file does not exist")
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
    from ..models.trained import read_student_config  # torch-free CLI: `python -m ld_core --help` imports every command

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


# ------------------------------------------------------------------------------------------- inference


def infer(student, checkpoint: Path, coco_gt) -> tuple:
    """Detections (COCO results format) of ``student`` (a :class:`StudentConfig`) with the weights of
    ``checkpoint`` on its whole test dataset, and seconds."""
    import torch
    from mmdet.registry import DATASETS
    from mmengine.dataset import pseudo_collate

    from ..models.trained import load_student  # torch-free CLI: `python -m ld_core --help` imports every command

    start = time.perf_counter()
    model = load_student(student, checkpoint, "cpu").model
    cfg = student.cfg
    with _quiet():  # mmdet's COCO loader prints too
        dataset = DATASETS.build(copy.deepcopy(cfg["test_dataloader"]["dataset"]))
    if len(dataset) == 0:
        raise DataError(f"{student.path}: the test dataset is empty")
    cat_ids = coco_gt.getCatIds(catNms=list(dataset.metainfo["classes"]))
    batch_size = max(1, int(cfg["test_dataloader"].get("batch_size", 1)))
    dets = []
    with torch.no_grad():
        for first in range(0, len(dataset), batch_size):
            batch = pseudo_collate([dataset[i] for i in range(first, min(first + batch_size, len(dataset)))])
            for sample in model.test_step(batch):
                pred = sample.pred_instances
                boxes = pred.bboxes.cpu().numpy()
                for box, score, label in zip(boxes, pred.scores.cpu().numpy(), pred.labels.cpu().numpy()):
                    x1, y1, x2, y2 = box.tolist()
                    dets.append(dict(image_id=int(sample.img_id), category_id=int(cat_ids[int(label)]),
                                     bbox=[x1, y1, x2 - x1, y2 - y1], score=float(score)))
    return dets, cat_ids, time.perf_counter() - start


# ------------------------------------------------------------------------------------------- measurement


def _r(value, nd=4):
    return None if value is None else round(float(value), nd)


def _variance_block(full: Dict[str, float], halves: Dict[str, list], n_full: int, half_sizes) -> dict:
    """Decomposition of the variance over seeds of a per-seed quantity (full value, ``[(A, B)]`` per split)."""
    seeds = list(full)
    var_full = sample_var([full[s] for s in seeds])
    n_splits = len(next(iter(halves.values())))
    per_half = [sample_var([halves[s][j][h] for s in seeds]) for j in range(n_splits) for h in (0, 1)]
    var_half = statistics.fmean(per_half)
    return decompose(var_full, var_half, n_full, half_sizes)


def _split_half_se(halves: Sequence) -> Optional[float]:
    return sample_sd([(a - b) / 2.0 for a, b in halves])


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
        dets, cat_ids, seconds = infer(student, e["checkpoint"], gt)
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
            _coco_ap_fresh(gt, dets, cat_ids, halves[0][0])
            fresh_seconds = time.perf_counter() - t_fresh
        if ap_full is None or any(v is None for pair in ap_halves for v in pair):
            raise DataError(f"{ann}: no ground truth of the config's classes in the validation split or one "
                            "of its halves")
        per_dir.append(dict(dir=e["dir"], run=e["run"], seed=e["seed"], config_seed=student.meta.get("seed"),
                            ann_file=str(ann), n_detections=len(dets), ap_full=ap_full, ap_halves=ap_halves,
                            eval_se_split_half=_split_half_se(ap_halves), inference_seconds=seconds,
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
            out.update(_variance_block(full, {s: by_run[run][s]["ap_halves"] for s in seeds}, n_full, half_sizes))
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
                   eval_se_split_half_per_seed={s: _split_half_se(diff_halves[s]) for s in shared})
        if len(shared) >= 2:
            out.update(_variance_block(full, diff_halves, n_full, half_sizes))
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
