"""Bad input through the real command line: one `error:` line naming the file, exit 2, no outputs left."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ld_core.data.synthetic import CLASSES, generate
from ld_core.config.matrix import load_matrix
from ld_core.config.builder import build_run_config
from ld_core.config.resolve import config_text
from ld_core.config.scale import load_scale

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    generate(tmp / "results" / "data" / "synthetic", seed=0, num_train=8, num_val=4, image_size=64, max_objects=2)
    return tmp


def write_config(workspace: Path, run_id: str, name: str, **kwargs) -> Path:
    matrix = load_matrix(ROOT / "configs" / "experiments.yaml")
    scale = load_scale(ROOT / "configs" / "scales" / "tiny.yaml")
    run = matrix.run(run_id)
    seed = run.seed if run.seed is not None else 0
    cfg = build_run_config(run, seed, scale, results_dir=workspace / "results", classes=CLASSES, **kwargs)
    path = workspace / name / "config.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config_text(cfg))
    return path


def train(config: Path):
    out = config.parent / "checkpoint.pth"
    proc = subprocess.run([sys.executable, "-m", "ld_core", "train", "--config", str(config), "--checkpoint", str(out),
                           "--work-dir", str(config.parent / "work")], capture_output=True, text=True, cwd=ROOT)
    return proc, out


def assert_one_line_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_missing_dataset_folder(workspace, tmp_path):
    cfg = write_config(workspace, "gfl_r18", "missing", )
    text = cfg.read_text().replace(str(workspace / "results"), str(tmp_path / "nowhere"))
    cfg.write_text(text)
    proc, ckpt = train(cfg)
    assert_one_line_error(proc, str(tmp_path / "nowhere"))
    assert not ckpt.exists()


@pytest.mark.parametrize("corrupt,needle", [
    (lambda d: "{ not json", "malformed JSON"),
    (lambda d: json.dumps({**d, "annotations": d["annotations"] + [{**d["annotations"][0], "id": 999, "image_id": 4242}]}),
     "unknown image_id 4242"),
    (lambda d: json.dumps({**d, "annotations": d["annotations"] + [{**d["annotations"][0], "id": 998, "category_id": 77}]}),
     "unknown category_id 77"),
])
def test_malformed_annotations(workspace, tmp_path, corrupt, needle):
    import shutil

    results = tmp_path / "results"
    shutil.copytree(workspace / "results", results)
    ann = results / "data/synthetic/coco/annotations/instances_train.json"
    ann.write_text(corrupt(json.loads(ann.read_text())))
    cfg = write_config(tmp_path, "gfl_r18", "bad")
    cfg.write_text(cfg.read_text().replace(str(tmp_path / "results"), str(results)))
    proc, ckpt = train(cfg)
    assert_one_line_error(proc, str(ann), needle)
    assert not ckpt.exists()


def test_teacher_with_other_reg_max_is_rejected_before_training(workspace):
    teacher_cfg = write_config(workspace, "gfl_r101_teacher", "teacher")
    teacher_cfg.write_text(teacher_cfg.read_text().replace("reg_max=16", "reg_max=8"))
    (teacher_cfg.parent / "checkpoint.pth").write_bytes(b"")
    student = write_config(workspace, "gfl_r18_ld_r101", "student", teacher_config=str(teacher_cfg),
                           teacher_ckpt=str(teacher_cfg.parent / "checkpoint.pth"))
    proc, ckpt = train(student)
    assert_one_line_error(proc, str(student), str(teacher_cfg), "reg_max 8 (teacher) vs 16 (student)")
    assert not ckpt.exists() and not (student.parent / "work").exists()


def test_unknown_run_in_resolve(workspace):
    proc = subprocess.run([sys.executable, "-m", "ld_core", "resolve", "--matrix", "configs/experiments.yaml",
                           "--scale", "configs/scales/tiny.yaml", "--run", "gfl_r7", "--seed", "0",
                           "--out", str(workspace / "x.py")], capture_output=True, text=True, cwd=ROOT)
    assert_one_line_error(proc, "configs/experiments.yaml", "unknown run 'gfl_r7'")
    assert not (workspace / "x.py").exists()


@pytest.mark.parametrize("make, needle", [
    (lambda d: None, "benchmark folder does not exist"),
    (lambda d: (d / "train").mkdir(parents=True) or (d / "train" / "a-seed0.tsv").write_text("x\ty\n1\t2\n"),
     "not a Snakemake benchmark file"),
])
def test_timing_of_a_missing_or_foreign_benchmark_folder(tmp_path, make, needle):
    folder = tmp_path / "benchmarks"
    make(folder)
    proc = subprocess.run([sys.executable, "-m", "ld_core", "timing", "--benchmarks", str(folder),
                           "--out", str(tmp_path / "t.csv")], capture_output=True, text=True)
    assert proc.returncode == 2 and needle in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "t.csv").exists()


# ------------------------------------------------------------------------------ the command line itself
PROBE = ("import sys\nfrom ld_core.cli import COMMANDS, main\ntry:\n    rc = main(sys.argv[1:])\nexcept SystemExit as e:\n"
         "    rc = e.code\nprint(rc, 'torch' in sys.modules, sorted({m for m, _ in COMMANDS.values()} & set(sys.modules)))\n")


@pytest.mark.parametrize("argv, status, imported", [
    (["--help"], 0, []),
    ([], 2, []),
    (["no-such-command"], 2, []),
    (["resolve", "--help"], 0, ["ld_core.commands.resolve"]),
    (["timing", "--benchmarks"], 2, ["ld_core.commands.timing"]),
])
def test_only_the_chosen_command_is_imported(argv, status, imported):
    """The parser lists every command without importing one; only the chosen command's module is imported, and
    neither --help nor `resolve` imports torch."""
    out = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.stdout.splitlines()[-1] == f"{status} False {imported}", out.stdout + out.stderr


def test_unknown_command_is_one_line_naming_every_command():
    from ld_core.cli import COMMANDS

    proc = subprocess.run([sys.executable, "-m", "ld_core", "no-such-command"], capture_output=True, text=True, cwd=ROOT)
    assert_one_line_error(proc, "invalid choice: 'no-such-command'", *(f"'{name}'" for name in COMMANDS))
    help_text = subprocess.run([sys.executable, "-m", "ld_core", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert help_text.returncode == 0 and all(f"    {name}" in help_text.stdout for name in COMMANDS)
