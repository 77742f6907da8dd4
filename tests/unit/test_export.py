"""`ld_core export`: a trained student as a stock mmdetection model.

Fixture: a tiny GFL LD student (gfl_r18_ld_r101, resolved at the tiny scale, teacher of random weights) trained
with the real `python -m ld_core train`. Its export is loaded with `mmdet.apis.init_detector` in a fresh Python
in which ld_core cannot be imported, and its detections must equal the pipeline's own (the one loader,
`ld_core.models.trained`) on the same images.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "configs" / "scales" / "tiny.yaml"
STUDENT, TEACHER = "gfl_r18_ld_r101", "gfl_r101_teacher"

# run in a fresh interpreter: init_detector + inference_detector, ld_core refused by an import hook
STOCK_INFERENCE = r"""
import importlib.abc, json, sys

class NoLdCore(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "ld_core" and BLOCK:
            raise ImportError(f"the exported model imported {name}")
        return None

folder, images, out, BLOCK = sys.argv[1], sys.argv[2].split(","), sys.argv[3], sys.argv[4] == "block"
sys.meta_path.insert(0, NoLdCore())
from mmdet.apis import inference_detector, init_detector

model = init_detector(f"{folder}/config.py", f"{folder}/checkpoint.pth", device="cpu")
dets = [dict(bboxes=r.pred_instances.bboxes.tolist(), scores=r.pred_instances.scores.tolist(),
             labels=r.pred_instances.labels.tolist()) for r in inference_detector(model, images)]
json.dump(dict(dets=dets, classes=list(model.dataset_meta["classes"]),
               ld_core=sorted(m for m in sys.modules if m.split(".")[0] == "ld_core")), open(out, "w"))
"""


def _cli(argv):
    """``python -m ld_core`` in-process: (exit status, stdout, stderr)."""
    from ld_core.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


def _resolve(results: Path, run: str, seed: int) -> Path:
    out = results / "runs" / run / f"seed{seed}" / "config.py"
    rc, _, err = _cli(["resolve", "--matrix", ROOT / "configs" / "experiments.yaml", "--scale", TINY,
                       "--results", results, "--run", run, "--seed", seed, "--out", out])
    assert rc == 0, err
    return out


def _random_checkpoint(config: Path, seed: int = 0) -> Path:
    """A tensor-only checkpoint of the (plain) student of ``config`` with random weights."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config, ConfigDict

    import ld_core.models  # noqa: F401
    from ld_core.models.checkpoints import save_tensor_checkpoint
    from ld_core.student import student_only

    register_all_modules(init_default_scope=True)
    torch.manual_seed(seed)
    model = MODELS.build(ConfigDict(student_only(Config.fromfile(str(config)).to_dict())["model"]))
    model.init_weights()
    return save_tensor_checkpoint(model, config.parent / "checkpoint.pth", {"run": config.parent.parent.name})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """results/ with the synthetic data and a trained tiny LD student (its teacher: random weights)."""
    results = tmp_path_factory.mktemp("export") / "results"
    synth = yaml.safe_load(TINY.read_text())["data"]["synthetic"]
    rc, _, err = _cli(["data-synth", "--out", results / "data" / "synthetic",
                       *[f"--{k.replace('_', '-')}={v}" for k, v in synth.items()]])
    assert rc == 0, err
    _random_checkpoint(_resolve(results, TEACHER, 1000), seed=1)
    config = _resolve(results, STUDENT, 0)
    proc = subprocess.run([sys.executable, "-m", "ld_core", "train", "--config", str(config), "--checkpoint",
                           str(config.parent / "checkpoint.pth"), "--work-dir", str(results / "work")],
                          capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS="1"),
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    images = sorted((results / "data" / "synthetic" / "coco" / "images" / "val").glob("*.jpg"))[:3]
    return dict(results=results, run_dir=config.parent, images=images)


def _stock_inference(folder: Path, images, tmp_path: Path, block: bool = True) -> dict:
    """Detections of the exported ``folder`` from a fresh Python run in ``tmp_path``, PYTHONPATH cleared."""
    out = tmp_path / "stock.json"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", STOCK_INFERENCE, str(folder), ",".join(map(str, images)), str(out),
                           "block" if block else "allow"], capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


def _pipeline_inference(run_dir: Path, images) -> list:
    """Detections of the run through the one loader, on the config's test pipeline."""
    from mmdet.apis import inference_detector

    from ld_core.models.trained import load_run

    model = load_run(run_dir).model
    return [dict(bboxes=r.pred_instances.bboxes.numpy(), scores=r.pred_instances.scores.numpy(),
                 labels=r.pred_instances.labels.numpy()) for r in inference_detector(model, [str(i) for i in images])]


def _assert_same(ours: list, stock: list) -> None:
    assert len(ours) == len(stock)
    for a, b in zip(ours, stock):
        assert len(a["scores"]) == len(b["scores"])
        np.testing.assert_allclose(a["bboxes"], np.asarray(b["bboxes"]).reshape(-1, 4), rtol=0, atol=1e-5)
        np.testing.assert_allclose(a["scores"], b["scores"], rtol=0, atol=1e-5)
        assert a["labels"].tolist() == b["labels"]


def test_export_is_a_stock_mmdet_model_with_the_pipelines_detections(trained, tmp_path):
    from ld_core.data.synthetic import CLASSES

    out = tmp_path / "deploy"
    rc, stdout, err = _cli(["export", "--run-dir", trained["run_dir"], "--out", out])
    assert rc == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pth", "config.py"]
    assert "stock mmdetection (GFL + GFLHead); no ld_core needed" in stdout
    text = (out / "config.py").read_text()
    assert "ld_core" not in text and "custom_imports" not in text and "ld_repro" not in text
    for gone in ("teacher", "LocalizationDistiller", "LDGFLHead", "loss_ld", "MixedPrecisionHook"):
        assert gone not in text, gone
    from mmengine.config import Config

    cfg = Config.fromfile(str(out / "config.py"))
    assert set(cfg) == {"default_scope", "model", "test_dataloader", "test_evaluator", "test_cfg", "default_hooks",
                        "env_cfg", "vis_backends", "visualizer", "log_processor", "log_level"}  # nothing of training
    assert (cfg.model.type, cfg.model.bbox_head.type) == ("GFL", "GFLHead")
    assert Path(cfg.test_dataloader.dataset.data_root).is_absolute() and Path(cfg.test_evaluator.ann_file).is_absolute()
    payload = torch.load(out / "checkpoint.pth", weights_only=True)  # tensors and plain values only
    assert payload["meta"] == {"dataset_meta": {"classes": list(CLASSES)}}

    stock = _stock_inference(out, trained["images"], tmp_path)
    assert stock["ld_core"] == [] and stock["classes"] == list(CLASSES)
    ours = _pipeline_inference(trained["run_dir"], trained["images"])
    assert sum(len(d["scores"]) for d in ours) > 0
    _assert_same(ours, stock["dets"])


def test_a_distribution_head_run_exports_with_custom_imports_and_loads_with_ld_core(trained, tmp_path):
    """Table 3's DistATSSHead has no stock twin: the export imports ld_core.models, and says so."""
    run_dir = _resolve(trained["results"], "atss_r50_dist", 0).parent
    _random_checkpoint(run_dir / "config.py")
    out = tmp_path / "deploy"
    rc, stdout, err = _cli(["export", "--run-dir", run_dir, "--out", out])
    assert rc == 0, err
    assert "needs ld_core (ATSS + DistATSSHead; DistATSSHead: not in stock mmdetection or mmcv; the config " \
           "imports ld_core.models)" in stdout
    from mmengine.config import Config

    cfg = Config.fromfile(str(out / "config.py"))  # imports ld_core.models, as init_detector does
    assert cfg.custom_imports == dict(imports=["ld_core.models"], allow_failed_imports=False)
    assert "ld_repro" not in cfg and "train_dataloader" not in cfg
    stock = _stock_inference(out, trained["images"], tmp_path, block=False)
    assert "ld_core.models" in stock["ld_core"]
    _assert_same(_pipeline_inference(run_dir, trained["images"]), stock["dets"])


def test_refusals_are_one_line_and_leave_no_folder(trained, tmp_path):
    import shutil

    def refused(argv, *needles):
        rc, _, err = _cli(["export", *argv])
        lines = [line for line in err.splitlines() if line.strip()]
        assert rc == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
        for needle in needles:
            assert needle in lines[0], lines[0]

    out = tmp_path / "deploy"
    refused(["--run-dir", tmp_path / "nowhere", "--out", out], str(tmp_path / "nowhere"), "does not exist")
    no_ckpt = tmp_path / "runs" / "x" / "seed0"
    no_ckpt.mkdir(parents=True)
    shutil.copy(trained["run_dir"] / "config.py", no_ckpt / "config.py")
    refused(["--run-dir", no_ckpt, "--out", out], str(no_ckpt / "checkpoint.pth"), "does not exist")
    no_cfg = tmp_path / "runs" / "y" / "seed0"
    no_cfg.mkdir(parents=True)
    shutil.copy(trained["run_dir"] / "checkpoint.pth", no_cfg / "checkpoint.pth")
    refused(["--run-dir", no_cfg, "--out", out], str(no_cfg / "config.py"), "does not exist")
    assert not out.exists()

    diverged = tmp_path / "runs" / "nan" / "seed0"
    diverged.mkdir(parents=True)
    shutil.copy(trained["run_dir"] / "config.py", diverged / "config.py")
    payload = torch.load(trained["run_dir"] / "checkpoint.pth", weights_only=True)
    payload["state_dict"]["bbox_head.gfl_cls.bias"][0] = float("nan")
    torch.save(payload, diverged / "checkpoint.pth")
    refused(["--run-dir", diverged, "--out", out], str(diverged / "checkpoint.pth"), "NaN/inf",
            "bbox_head.gfl_cls.bias", "training diverged")
    assert not out.exists() and not list(tmp_path.glob(".deploy.*"))

    out.mkdir()
    (out / "mine.txt").write_text("keep")
    refused(["--run-dir", trained["run_dir"], "--out", out], str(out), "--force")
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]
    rc, _, err = _cli(["export", "--run-dir", trained["run_dir"], "--out", out, "--force"])
    assert rc == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pth", "config.py"]
    assert not list(tmp_path.glob(".deploy.*"))
