"""Command line: ``python -m ld_core <command>`` (the Snakemake rules call these)."""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from .errors import ConfigError, LDError, one_line

COMMANDS = {
    "data-synth": ("ld_core.commands.synthetic_data",
                   "generate the synthetic detection dataset (COCO json + VOC xml)"),
    "rehearsal-data": ("ld_core.commands.rehearsal_data", "write the inputs of `make rehearse`: mini COCO 2017 and "
                                                          "VOC 07+12 in their exact layouts, random ImageNet and "
                                                          "released-teacher files"),
    "example-dataset": ("ld_core.commands.example_dataset",
                        "write a small dataset laid out as your own would be, with its dataset files (the worked "
                        "example of docs/own_dataset.md)"),
    "check-data": ("ld_core.commands.datacheck", "check the datasets (COCO 2017, VOC 07+12, or your own) and "
                                                 "every image: every problem listed"),
    "resolve": ("ld_core.commands.resolve", "write the mmdet config of one run/seed of the matrix"),
    "train": ("ld_core.commands.train", "train one resolved config"),
    "import-teacher": ("ld_core.commands.import_teacher",
                       "a released teacher checkpoint -> the run's tensor-only checkpoint (keys/shapes checked)"),
    "check-weights": ("ld_core.commands.check_weights",
                      "check checkpoint files against a resolved config: a detector, or its ImageNet backbone"),
    "evaluate": ("ld_core.commands.evaluate", "COCO AP / VOC mAPs of a trained student"),
    "noise": ("ld_core.commands.noise", "seed spread of COCO AP split into training and evaluation (val size) parts"),
    "profile": ("ld_core.commands.profile", "Table 3 columns of a run: params, GFLOPs (paper architecture), FPS"),
    "complexity": ("ld_core.commands.complexity", "params and GFLOPs of a detector at the paper's R-50-FPN, 1280x800"),
    "fps": ("ld_core.commands.fps", "inference FPS of a trained student (batch 1, test pipeline incl. NMS)"),
    "export": ("ld_core.commands.export", "a trained student as a stock mmdetection config.py + checkpoint.pth"),
    "table": ("ld_core.commands.table", "render a paper table (CSV + LaTeX) from metrics"),
    "figures": ("ld_core.commands.figures", "Figures 1-2: baseline vs LD detections, NMS 0.6 vs 0.95"),
    "scorecard": ("ld_core.commands.scorecard", "every paper cell and claim checked on the reproduced numbers"),
    "timing": ("ld_core.commands.timing", "per-rule time summary of a DAG run from its Snakemake benchmark files"),
    "bench": ("ld_core.commands.bench", "training-step benchmark: stock mmdet LD vs ours vs the plain student"),
    "config-reference": ("ld_core.commands.config_reference",
                         "docs/configuration.md, generated from the descriptions of workflow/schemas/*.schema.yaml"),
}


class _Parser(argparse.ArgumentParser):
    """argparse with its usage + error lines turned into one ``error: <command>: <problem>`` line."""

    def error(self, message):
        raise ConfigError(f"{self.prog}: {message}")


def build_parser(argv) -> _Parser:
    """The parser of ``python -m ld_core``: every command listed (from :data:`COMMANDS`, nothing imported), the
    arguments of the one named in ``argv`` only (its module imported: torch only for the commands that use it)."""
    chosen = next((word for word in argv if not word.startswith("-")), None)  # the top level has no other option
    parser = _Parser(prog="python -m ld_core", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (module, help_text) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text)
        sub_parser.set_defaults(_module=module)
        if name == chosen:
            importlib.import_module(module).add_arguments(sub_parser)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser(argv).parse_args(argv)
        return importlib.import_module(args._module).run(args)
    except LDError as exc:
        report(f"error: {exc}")
        return 2
    except Exception as exc:  # a bug or the machine (a full disk): the traceback goes to the log as ever
        where = f"{exc.filename}: " if isinstance(exc, OSError) and exc.filename else ""
        text = exc.strerror if isinstance(exc, OSError) and exc.strerror else one_line(exc)[:300]
        report(f"error: python -m ld_core {' '.join(argv[:1])}: {where}{text or type(exc).__name__} "
               f"({type(exc).__name__}; traceback in the job's log)", log=False)
        raise


ERROR_FD = "LD_REPRO_ERROR_FD"  # set by the workflow's jobs (workflow/rules/common.smk): the job's own stderr


def report(line: str, log: bool = True) -> None:
    """``line`` on stderr (a job's log) and, in a workflow job, on the job's own stderr as well: Snakemake's
    output then says why a job failed even where its log could not be written (a full disk)."""
    if log:
        try:
            print(line, file=sys.stderr, flush=True)
        except OSError:
            pass
    fd = os.environ.get(ERROR_FD, "")
    if not fd.isdigit():
        return
    try:
        if os.path.sameopenfile(2, int(fd)):  # no redirected log: stderr already said it
            return
        os.write(int(fd), (line + "\n").encode("utf-8", "replace"))
    except OSError:
        pass
