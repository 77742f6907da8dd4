"""Every config file checked when the Snakefile is parsed (ld_core/config/file_checks.py, workflow/schemas/).

Each test writes a broken copy of the configs (configs/ + workflow/schemas/ copied into tmp_path, so that the
model settings files and scale profiles can be broken too) and expects ONE line naming the file and the key.
The same mistakes through the real `snakemake -n`: tests/workflow/test_dry_run_errors.py.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from helpers import ROOT, edit_yaml
from ld_core.config.pipeline import load_pipeline
from ld_core.errors import ConfigError


@pytest.fixture
def project(tmp_path):
    """A copy of the project's configs and schemas: load_pipeline(..., basedir=project) reads only these."""
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    shutil.copytree(ROOT / "workflow" / "schemas", tmp_path / "workflow" / "schemas")
    return tmp_path


def edit_text(path: Path, old: str, new: str) -> Path:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return path


def error_of(project: Path, **config) -> str:
    with pytest.raises(ConfigError) as err:
        load_pipeline(config, project)
    message = str(err.value)
    assert "\n" not in message, message
    return message


def assert_names(message: str, path: Path, key: str, *needles: str) -> None:
    assert message.startswith(f"{path}: {key}: "), message
    for needle in needles:
        assert needle in message, message


# ----------------------------------------------------------------------------------------------- schemas


def test_missing_key(project):
    path = edit_yaml(project / "configs" / "experiments.yaml", lambda d: d["runs"]["gfl_r18"].pop("schedule"))
    assert_names(error_of(project), path, "runs.gfl_r18", "missing key 'schedule'")


def test_unknown_key(project):
    path = edit_yaml(project / "configs" / "claims.yaml", lambda d: d["claims"][1].update(colour="red"))
    assert_names(error_of(project), path, "claims[1]", "unknown key 'colour' (allowed: allow_equal, better,")


def test_wrong_type(project):
    path = edit_yaml(project / "configs" / "experiments.yaml", lambda d: d["tables"]["table2"].update(seeds="one"))
    assert_names(error_of(project), path, "tables.table2.seeds", "must be an integer, got a string 'one'")


def test_scale_profile_unknown_head_key(project):
    path = edit_yaml(project / "configs" / "scales" / "embedded.yaml",
                     lambda d: d["model"]["heads"].update(yolo={"bbox_head": {}}))
    assert_names(error_of(project), path, "model.heads", "unknown key 'yolo' (allowed: atss, fcos, gfl, retinanet)")
    edit_yaml(path, lambda d: (d["model"]["heads"].pop("yolo"), d["model"]["heads"]["gfl"].update(neck={})))
    assert_names(error_of(project), path, "model.heads.gfl", "unknown key 'neck' (allowed: bbox_head)")


def test_scale_profile_grad_clip_is_the_clip_grad_mapping(project):
    """grad_clip is mmengine's clip_grad (every keyword in the file); the old bare number is refused."""
    path = edit_yaml(project / "configs" / "scales" / "embedded.yaml", lambda d: d["train"].update(grad_clip=35))
    assert_names(error_of(project), path, "train.grad_clip", "must be a mapping or null, got an integer 35")
    edit_yaml(path, lambda d: d["train"].update(grad_clip={"max_norm": 35, "norm_type": 2, "fused": True}))
    assert_names(error_of(project), path, "train.grad_clip", "unknown key 'fused'")


def test_model_settings_file_wrong_type(project):
    path = edit_yaml(project / "configs" / "models" / "gfl.yaml", lambda d: d.update(bbox_head="GFLHead"))
    assert_names(error_of(project), path, "bbox_head", "must be a mapping, got a string 'GFLHead'")


# ----------------------------------------------------------------------------------------------- the matrix


def test_row_cell_count(project):
    path = edit_yaml(project / "configs" / "experiments.yaml",
                     lambda d: d["tables"]["table1"]["rows"][1]["cells"].pop())
    assert_names(error_of(project), path, "tables.table1.rows[1].cells", "3 cells for the 4 columns of table1")


def test_row_of_an_unknown_run(project):
    path = edit_yaml(project / "configs" / "experiments.yaml",
                     lambda d: d["tables"]["table3"]["rows"][0].update(run="ghost"))
    assert_names(error_of(project), path, "tables.table3.rows[0].run", "unknown run 'ghost' (known: gfl_r101_teacher,")


def test_unknown_teacher(project):
    path = edit_yaml(project / "configs" / "experiments.yaml",
                     lambda d: d["runs"]["gfl_r18_self"].update(teacher={"run": "gfl_r7", "seed": 1000}))
    assert_names(error_of(project), path, "runs.gfl_r18_self.teacher.run", "teacher 'gfl_r7' is not a declared run")


def test_undefined_schedule_of_the_selected_scale(project):
    """--config scale=tiny checks tiny.yaml; every run of the matrix, not only the selected tables' runs."""
    scale = edit_yaml(project / "configs" / "scales" / "tiny.yaml", lambda d: d["schedules"].pop("voc_teacher"))
    message = error_of(project, scale="tiny", tables=["table1"])
    assert_names(message, project / "configs" / "experiments.yaml", "runs.gfl_r34_voc_teacher.schedule",
                 f"schedule 'voc_teacher' is not defined in the scale profile {scale}", "(schedules: 1x, 2x, voc)")
    load_pipeline({"scale": "embedded", "tables": ["table1"]}, project)  # the other profiles are not involved


def test_unknown_distill_preset_or_constant(project):
    """A preset a run names must exist in distill.yaml; a preset's keys are distill keys (one line each)."""
    matrix = project / "configs" / "experiments.yaml"
    edit_yaml(matrix, lambda d: d["runs"]["atss_r50_ld"]["distill"].update(preset="author"))
    assert_names(error_of(project), matrix, "runs.atss_r50_ld.distill.preset", "preset 'author' is not defined in",
                 "distill.yaml (presets: paper, authors)")
    edit_yaml(matrix, lambda d: d["runs"]["atss_r50_ld"]["distill"].update(preset="authors"))
    distill = edit_yaml(project / "configs" / "models" / "distill.yaml",
                        lambda d: d["presets"]["authors"]["atss"].update(vlr_factor=0.15))
    assert_names(error_of(project), distill, "presets.authors.atss", "unknown key 'vlr_factor'")
    edit_yaml(distill, lambda d: (d["presets"]["authors"]["atss"].pop("vlr_factor"),
                                  d["defaults"].update(preset="mine")))
    assert_names(error_of(project), distill, "defaults.preset", "preset 'mine' is not defined")


# ----------------------------------------------------------------------------------------------- claims


def test_claim_metric_not_in_its_table(project):
    path = edit_yaml(project / "configs" / "claims.yaml", lambda d: d["claims"][3].update(metrics=["AP", "AP50"]))
    assert_names(error_of(project), path, "claims[3].metrics[1]", "'AP50' is not a metric of table2 (metrics: AP, AP75)")


def test_claim_of_an_unknown_table(project):
    path = edit_yaml(project / "configs" / "claims.yaml", lambda d: d["claims"][6].update(table="table7"))
    assert_names(error_of(project), path, "claims[6].table", "'table7' is not a table of the matrix",
                 "(tables: table1, table2, table3, table4)")


def test_claims_and_paper_load_as_typed_objects(tmp_path):
    """ld_core.config.claims / .paper: the one validating loader of each file (the Snakefile's and the reports'):
    frozen objects, names stripped, a claim's text on one line, one row/metric given as a string."""
    import dataclasses

    from ld_core.config.claims import Claim, load_claims
    from ld_core.config.paper import load_paper
    from ld_core.config.file_checks import project_schemas

    matrix_path = ROOT / "configs" / "experiments.yaml"
    tables = yaml.safe_load(matrix_path.read_text())["tables"]
    paper = load_paper(ROOT / "configs" / "paper_tables.csv", tables, matrix_path, project_schemas())
    assert len(paper.cells) == len((ROOT / "configs" / "paper_tables.csv").read_text().splitlines()) - 1
    assert paper.value("table1", "ld+gt", "AP") == 36.5 and paper.cells[0].line == 2
    claims = tmp_path / "claims.yaml"
    claims.write_text(yaml.safe_dump({"claims": [
        {"id": " c1 ", "table": "table1", "text": "LD\n  beats   GT", "better": " ld-only", "than": "gt-only ",
         "metrics": "AP75"}]}))
    (claim,) = load_claims(claims, tables, matrix_path, paper, project_schemas())
    assert claim == Claim(id="c1", table="table1", text="LD beats GT", better=("ld-only",), than="gt-only",
                          metrics=("AP75",), allow_equal=False, ours_only=False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        claim.than = "ld+gt"


def test_missing_scale_profile_lists_the_profiles(project):
    message = error_of(project, scale="huge")
    assert message.startswith(f"{project / 'configs' / 'scales' / 'huge.yaml'}: scale profile 'huge' does not exist "
                              "(profiles: "), message
    assert "embedded" in message and "tiny" in message


# ----------------------------------------------------------------------------------------------- paper CSV


def test_paper_csv_bad_column(project):
    path = edit_text(project / "configs" / "paper_tables.csv", "metric,value\n", "metric,vaule\n")
    assert_names(error_of(project), path, "line 1", "unknown column 'vaule' (allowed: table, row,")


def test_paper_csv_unknown_row(project):
    path = edit_text(project / "configs" / "paper_tables.csv", "\n2,r50-self,", "\n2,r50-selfie,")
    assert_names(error_of(project), path, "line 14, column 'row'", "row 'r50-selfie' is not a row of table2")


def test_paper_csv_bad_number(project):
    path = edit_text(project / "configs" / "paper_tables.csv", "LD,AP,39.0\n", "LD,AP,39.O\n")
    assert_names(error_of(project), path, "line 27, column 'value'", "must be a number, got a string '39.O'")


# ----------------------------------------------------------------------------------------------- shipped configs


@pytest.mark.parametrize("scale", ["embedded", "paper", "tiny"])
def test_shipped_configs_validate(tmp_path, scale):
    extra = {"data_root": str(tmp_path), "voc_root": str(tmp_path), "allow_downloads": True} if scale == "paper" else {}
    pipe = load_pipeline({"scale": scale, **extra}, ROOT)
    assert pipe.scale["name"] == scale and pipe.jobs()


def test_schemas_know_the_detectors():
    from ld_core.config.detectors import DETECTORS
    from ld_core.config.file_checks import DETECTOR_FILES, schemas

    s = schemas(str(ROOT / "workflow" / "schemas")).schemas
    assert tuple(DETECTOR_FILES) == DETECTORS
    assert tuple(s["experiments"]["$defs"]["run"]["properties"]["detector"]["enum"]) == DETECTORS
    assert set(s["scale"]["properties"]["model"]["properties"]["heads"]["properties"]) == set(DETECTORS)
    assert set(s["distill"]["$defs"]["per_detector"]["properties"]) == set(DETECTORS)


def test_rehearsal_config_validates_on_top_of_the_defaults():
    """`make rehearse` / `make rehearse-slurm` stack configs/rehearsal.yaml on config.yaml (--configfile)."""
    from ld_core.config.pipeline import validate_config

    merged = yaml.safe_load((ROOT / "configs" / "config.yaml").read_text())
    merged.update(yaml.safe_load((ROOT / "configs" / "rehearsal.yaml").read_text()))
    schema = ROOT / "workflow" / "schemas" / "config.schema.yaml"
    cfg = validate_config(merged, schema, "configs/rehearsal.yaml")
    assert cfg["scale"] == "paper" and cfg["rehearsal"]["train_iters"] == 2
    merged["rehearsal"] = dict(merged["rehearsal"], train_iters="2")
    with pytest.raises(ConfigError, match="rehearsal.train_iters"):
        validate_config(merged, schema, "configs/rehearsal.yaml")
