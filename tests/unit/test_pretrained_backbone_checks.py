"""ImageNet backbones that really load: every `pretrained_dir` file is checked against its backbone (keys and
shapes) when the pipeline is parsed, the train log says what was loaded, and the paper profile never downloads
inside a job unless `allow_downloads: true` (through a real `snakemake -n`:
tests/workflow/test_pretrained_backbones.py). Files are random state dicts in torchvision's format, written by the
`imagenet` fixture of tests/conftest.py."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers import ROOT
from ld_core.errors import ConfigError
from weight_files import run_model_cfg, torchvision_backbone


def test_a_torchvision_file_fits_and_says_what_loads(imagenet):
    from ld_core.models.fitting import fit_backbone

    summary = fit_backbone(imagenet["good"], imagenet["r18"])
    n = len([k for k in torch.load(imagenet["good"], weights_only=True) if not k.startswith("fc.")])
    assert summary.startswith(f"{n} of {n} backbone tensors (ResNet-18) loaded from {imagenet['good']}"), summary
    assert summary.endswith("ignored: fc.weight, fc.bias")


@pytest.mark.parametrize("name,needles", [
    ("missing", ["does not fit the ResNet-18 backbone", "missing keys (layer4.0.conv1.weight"]),
    ("depth", ["unexpected keys (layer1.2.conv1.weight", "has 4 blocks in stage 2, the model 2 (another depth)"]),
    ("truncated", ["cannot read the checkpoint (truncated, corrupt or not a torch file"]),
    ("corrupt", ["cannot read the checkpoint (truncated, corrupt or not a torch file"]),
    ("empty", ["checkpoint file is empty"]),
    ("detector", ["is a detector checkpoint (backbone./neck./bbox_head. keys), not the ImageNet weights"]),
])
def test_a_file_without_the_backbone_is_one_line(imagenet, name, needles):
    from ld_core.models.fitting import fit_backbone

    with pytest.raises(ConfigError) as err:
        fit_backbone(imagenet["bad"][name], imagenet["r18"])
    msg = str(err.value)
    assert msg.startswith(f"{imagenet['bad'][name]}: ") and "\n" not in msg, msg
    for needle in needles:
        assert needle in msg, msg


def test_dcn_offsets_are_not_expected_from_imagenet_weights(tmp_path):
    """mmdet's DCN configs load plain ImageNet files: the offset convolutions start at zero, by design."""
    from ld_core.models.fitting import fit_backbone

    dcn = dict(type="ResNet", depth=50, base_channels=16, num_stages=4, out_indices=(0, 1, 2, 3),
               norm_cfg=dict(type="BN", requires_grad=True), style="pytorch",
               dcn=dict(type="DCN", deform_groups=1, fallback_on_stride=False),
               stage_with_dcn=(False, True, True, True))
    plain = {k: v for k, v in dcn.items() if k not in ("dcn", "stage_with_dcn")}
    path = torchvision_backbone(tmp_path / "resnet50.pth", plain)
    summary = fit_backbone(path, dcn)
    assert "26 DCN offset tensors not in ImageNet weights (zero init)" in summary, summary


# ----------------------------------------------------------------------------------------------- parse time


def paper(tmp_path, **extra):
    from ld_core.config.pipeline import load_pipeline

    return load_pipeline({"scale": "paper", "data_root": str(tmp_path), "tables": ["table1"],
                          "results": str(tmp_path / "results"), **extra}, ROOT)


def test_paper_scale_without_pretrained_dir_fails_unless_downloads_are_allowed(tmp_path):
    with pytest.raises(ConfigError) as err:
        paper(tmp_path)
    msg = str(err.value)
    assert "the 'paper' scale starts every backbone from ImageNet weights: set pretrained_dir to a folder holding " \
           "resnet101.pth, resnet18.pth" in msg and "--config allow_downloads=true" in msg and "\n" not in msg, msg
    assert paper(tmp_path, allow_downloads=True).jobs()


def test_pretrained_dir_files_are_checked_at_parse_time(tmp_path, imagenet):
    with pytest.raises(ConfigError) as err:  # resnet101.pth (the R-101 teacher) is not there
        paper(tmp_path, pretrained_dir=str(imagenet["good"].parent))
    assert str(err.value).startswith(f"{imagenet['good'].parent / 'resnet101.pth'}: ImageNet weights of runs "
                                     "gfl_r101_teacher do not exist (pretrained_dir ")
    assert "holds: resnet18.pth)" in str(err.value)
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    (bad_dir / "resnet18.pth").write_bytes(imagenet["good"].read_bytes())
    (bad_dir / "resnet101.pth").write_bytes(imagenet["good"].read_bytes())  # an R-18 file named resnet101.pth
    with pytest.raises(ConfigError) as err:
        paper(tmp_path, pretrained_dir=str(bad_dir))
    msg = str(err.value)
    assert msg.startswith(f"{bad_dir / 'resnet101.pth'}: does not fit the ResNet-101 backbone: ") and "\n" not in msg
    assert "the file's backbone has 2 blocks in stage 2, the model 4 (another depth)" in msg, msg
    (bad_dir / "resnet101.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError) as err:
        paper(tmp_path, pretrained_dir=str(bad_dir))
    assert str(err.value) == (f"{bad_dir / 'resnet101.pth'}: cannot read the checkpoint (truncated, corrupt or not "
                              "a torch file: Unsupported operand 110)")  # torch's advice (weights_only=False) cut


# ----------------------------------------------------------------------------------------------- the train log


def tiny_config_with_backbone_file(tmp_path: Path, backbone_file: Path) -> Path:
    from ld_core.config.resolve import config_text
    from ld_core.data.synthetic import generate

    generate(tmp_path / "results" / "data" / "synthetic", seed=0, num_train=8, num_val=4, image_size=64,
             max_objects=2)
    cfg = run_model_cfg("gfl_r18", "tiny", results=str(tmp_path / "results"))
    cfg["model"]["backbone"]["init_cfg"] = dict(type="Pretrained", checkpoint=str(backbone_file))
    path = tmp_path / "run" / "config.py"
    path.parent.mkdir(parents=True)
    path.write_text(config_text(cfg))
    return path


def train(config: Path):
    return subprocess.run([sys.executable, "-m", "ld_core", "train", "--config", str(config), "--checkpoint",
                           str(config.parent / "checkpoint.pth"), "--work-dir", str(config.parent / "work")],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_train_log_states_what_the_backbone_loaded(tmp_path):
    backbone = run_model_cfg("gfl_r18", "tiny")["model"]["backbone"]
    good = torchvision_backbone(tmp_path / "resnet18.pth", backbone)
    proc = train(tiny_config_with_backbone_file(tmp_path, good))
    assert proc.returncode == 0, proc.stderr[-3000:]
    n = len([k for k in torch.load(good, weights_only=True) if not k.startswith("fc.")])
    assert f"[train] pretrained backbone: {n} of {n} backbone tensors (ResNet-18) loaded from {good}; ignored: " \
           "fc.weight, fc.bias" in proc.stdout, proc.stdout[-3000:]


def test_train_refuses_a_backbone_file_that_does_not_fit(tmp_path):
    backbone = run_model_cfg("gfl_r18", "tiny")["model"]["backbone"]
    bad = torchvision_backbone(tmp_path / "resnet18.pth", backbone, drop=("layer3.", "layer4."))
    proc = train(tiny_config_with_backbone_file(tmp_path, bad))
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith(f"error: {bad}: does not fit the ResNet-18 backbone: ")
    assert "missing keys (layer3.0.conv1.weight" in lines[0]
    assert not (tmp_path / "run" / "checkpoint.pth").exists()
