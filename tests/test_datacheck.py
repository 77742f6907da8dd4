"""`ld_core check-data` on small fake COCO/VOC trees, and its Snakemake rule (local, before every training)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ld_core.cli import main
from ld_core.commands.datacheck import MAX_LISTED

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"),
             "--workflow-profile", str(ROOT / "workflow" / "profiles" / "default")]
SMALL = ["--expect-coco-train", "3", "--expect-coco-val", "2", "--expect-voc-trainval", "3", "--expect-voc-test", "2"]


def make_coco(root: Path, n_train=3, n_val=2) -> Path:
    (root / "annotations").mkdir(parents=True)
    for split, n in (("train2017", n_train), ("val2017", n_val)):
        (root / split).mkdir()
        images = [dict(id=i + 1, file_name=f"{i + 1:012d}.jpg", width=64, height=48) for i in range(n)]
        for img in images:
            (root / split / img["file_name"]).write_bytes(b"jpg")
        anns = [dict(id=i + 1, image_id=i + 1, category_id=1, bbox=[1, 2, 10, 12], area=120, iscrowd=0)
                for i in range(n)]
        data = dict(images=images, annotations=anns, categories=[dict(id=1, name="person")])
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(data))
    return root


VOC_XML = ("<annotation><filename>{stem}.jpg</filename><size><width>100</width><height>80</height>"
           "<depth>3</depth></size><object><name>dog</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>50</xmax>"
           "<ymax>60</ymax></bndbox></object></annotation>")


def make_voc(devkit: Path, splits=(("VOC2007", "trainval", 2), ("VOC2012", "trainval", 1), ("VOC2007", "test", 2))):
    for year, split, n in splits:
        root = devkit / year
        for sub in ("ImageSets/Main", "Annotations", "JPEGImages"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        stems = [f"{year[-4:]}{split[:2]}{i:04d}" for i in range(n)]
        (root / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{s}\n" for s in stems))
        for stem in stems:
            (root / "Annotations" / f"{stem}.xml").write_text(VOC_XML.format(stem=stem))
            (root / "JPEGImages" / f"{stem}.jpg").write_bytes(b"jpg")
    return devkit


@pytest.fixture
def datasets(tmp_path):
    return make_coco(tmp_path / "coco"), make_voc(tmp_path / "VOCdevkit")


def check(capsys, *args):
    code = main(["check-data", *args])
    out = capsys.readouterr()
    errors = [line for line in out.err.splitlines() if line.startswith("error: ")]
    return code, errors, out.out


def test_complete_trees_pass_with_their_expected_counts(datasets, tmp_path, capsys):
    coco, voc = datasets
    out = tmp_path / "checks" / "datasets.json"
    code, errors, stdout = check(capsys, "--coco", str(coco), "--voc", str(voc), *SMALL, "--out", str(out))
    assert code == 0 and errors == [], errors
    summary = json.loads(out.read_text())["summary"]
    assert summary["coco"]["train2017"]["images"] == 3 and summary["voc"]["VOC2012/trainval"]["images"] == 1
    assert "coco: train2017 3 images, val2017 2 images: ok" in stdout
    # the folder above VOCdevkit is accepted too
    assert check(capsys, "--voc", str(voc.parent), *SMALL)[0] == 0


def test_paper_counts_are_the_default(datasets, capsys):
    coco, voc = datasets
    code, errors, _ = check(capsys, "--coco", str(coco), "--voc", str(voc))
    assert code == 2
    text = "\n".join(errors)
    for expected in ("expected 118,287", "expected 5,000", "expected 16,551", "expected 4,952"):
        assert expected in text, text
    assert check(capsys, "--coco", str(coco), "--voc", str(voc), "--no-counts")[0] == 0
    assert check(capsys, "--coco", str(coco), "--expect-coco-train", "none", "--expect-coco-val", "2")[0] == 0


def test_every_problem_is_listed_one_line_each(datasets, capsys):
    coco, voc = datasets
    shutil.rmtree(coco / "val2017")                                          # 1: image folder missing
    (coco / "train2017" / "000000000002.jpg").unlink()                       # 2: one train image missing
    (voc / "VOC2007" / "Annotations" / "2007tr0001.xml").unlink()            # 3: annotation missing
    (voc / "VOC2007" / "ImageSets" / "Main" / "test.txt").unlink()           # 4: split file missing
    (voc / "VOC2012" / "Annotations" / "2012tr0000.xml").write_text("<annotation><size>")  # 5: bad XML
    code, errors, _ = check(capsys, "--coco", str(coco), "--voc", str(voc), *SMALL)
    assert code == 2
    problems, summary = errors[:-1], errors[-1]
    assert summary == f"error: {len(problems)} dataset problem(s) found; fix them before training"
    text = "\n".join(problems)
    assert f"{coco / 'val2017'}: image folder does not exist" in text
    assert f"{coco / 'train2017' / '000000000002.jpg'}: image file listed in" in text
    assert "2007tr0001.xml: annotation file listed in" in text
    assert f"{voc / 'VOC2007' / 'ImageSets' / 'Main' / 'test.txt'}: split file does not exist" in text
    assert "2012tr0000.xml: unparsable XML" in text
    assert len(problems) == 5, text


def test_many_missing_files_are_counted_not_all_named(tmp_path, capsys):
    coco = make_coco(tmp_path / "coco", n_train=MAX_LISTED + 4)
    for path in sorted((coco / "train2017").iterdir()):
        path.unlink()
    code, errors, _ = check(capsys, "--coco", str(coco), "--no-counts")
    assert code == 2
    named = [e for e in errors if "image file listed in" in e]
    assert len(named) == MAX_LISTED
    assert any("4 more image files listed in" in e and f"({MAX_LISTED + 4} in all)" in e for e in errors), errors


def test_broken_annotation_file_and_missing_root(tmp_path, capsys):
    coco = make_coco(tmp_path / "coco")
    (coco / "annotations" / "instances_train2017.json").write_text("{not json")
    code, errors, _ = check(capsys, "--coco", str(coco), "--voc", str(tmp_path / "nope"), *SMALL)
    assert code == 2
    assert any("instances_train2017.json: malformed JSON" in e for e in errors)
    assert any(f"{tmp_path / 'nope'}: VOCdevkit folder does not exist" in e for e in errors)


def test_check_data_runs_locally_before_every_paper_training(datasets, tmp_path):
    coco, _ = datasets
    common = [*SNAKEMAKE, "--directory", str(tmp_path / "wd"), "--cores", "1"]
    config = ["--config", "scale=paper", f"data_root={coco}", "tables=[table1]", "seeds=[0]", "figures=false",
              "allow_downloads=true"]
    dry = subprocess.run([*common, "-n", *config], capture_output=True, text=True, timeout=300)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "rule check_data:" in dry.stdout  # local on SLURM: tests/test_slurm_profile.py
    trains = [b for b in dry.stdout.split("\n\n") if "rule train:" in b]
    assert trains and all("results/checks/datasets.json" in b for b in trains)
    # for real: the paper counts fail (the fake tree is tiny) with every problem listed; small counts pass
    target = "results/checks/datasets.json"
    failed = subprocess.run([*common, target, *config], capture_output=True, text=True, timeout=300)
    assert failed.returncode != 0 and "expected 118,287" in failed.stdout + failed.stderr
    assert not (tmp_path / "wd" / target).exists()
    ok = subprocess.run([*common, target, *config, "data_check_counts={coco_train: 3, coco_val: 2}"],
                        capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stdout[-2000:] + ok.stderr[-2000:]
    assert json.loads((tmp_path / "wd" / target).read_text())["summary"]["coco"]["val2017"]["images"] == 2
