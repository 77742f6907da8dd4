"""The documentation as a user meets it: every relative link, repository path, `python -m ld_core` command and
`make` target named in README.md and docs/ exists; the configuration reference is what the schemas generate;
a plain `snakemake` at the repository root gets the same workflow profile as `make reproduce`."""
from __future__ import annotations

import glob
import itertools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from helpers import ROOT
from ld_core.cli import COMMANDS, main
from ld_core.commands import config_reference

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
REPO_DIRS = ("configs", "docs", "ld_core", "profiles", "scripts", "tests", "workflow")  # tracked top-level folders
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
LINK = re.compile(r"\]\(([^()\s]+)\)")
PATH = re.compile(r"(?<![\w./~$-])((?:%s)/(?:[^\s`'\"()\[\]|,;{}#]|\{[^{}\s]*\})*)" % "|".join(REPO_DIRS))
COMMAND = re.compile(r"python -m ld_core ([a-z][a-z0-9-]*)")
MAKE = re.compile(r"(?<![\w/.-])make ([a-z][\w-]*)")


def _code(text: str) -> list[str]:
    """Fenced blocks and inline code spans of a Markdown text."""
    return FENCE.findall(text) + re.findall(r"`([^`\n]+)`", FENCE.sub("", text))


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(text: str) -> set[str]:
    seen, out = {}, set()
    for line in FENCE.sub("", text).splitlines():
        if m := re.match(r"#{1,6}\s+(.*)", line):
            slug = _slug(m.group(1))
            out.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
            seen[slug] = seen.get(slug, 0) + 1
    return out


def _expand(path: str) -> list[str]:
    """``a/{b,c}/<x>.yaml`` -> glob patterns ``a/b/*.yaml``, ``a/c/*.yaml``."""
    path = re.sub(r"<[^<>/]*>|\.\.\.|…", "*", path.rstrip(".:"))
    parts = re.split(r"\{([^{}]*)\}", path)
    options = [p.split(",") if i % 2 else [p] for i, p in enumerate(parts)]
    return ["".join(choice) for choice in itertools.product(*options)]


def _problems_of(text: str, where: Path, name: str) -> list[str]:
    """What ``text`` (a page in folder ``where``) names that does not exist, one line each."""
    problems = []
    for target in LINK.findall(FENCE.sub("", text)):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        dest = (where / file).resolve() if file else None
        if dest is None:
            if anchor not in _anchors(text):
                problems.append(f"{name}: link to {target}: no such heading")
        elif not dest.exists():
            problems.append(f"{name}: link to {target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest.read_text(encoding="utf-8")):
            problems.append(f"{name}: link to {target}: no such heading in {dest.name}")
    for token in PATH.findall(text):
        path, _, test = token.partition("::")
        if not all(glob.glob(str(ROOT / p)) for p in _expand(path)):
            problems.append(f"{name}: names {path}, which does not exist")
        elif test and not re.search(rf"^def {re.escape(test)}\(", (ROOT / path).read_text(), re.M):
            problems.append(f"{name}: names {token}, no such test")
    code = "\n".join(_code(text))
    targets = set(re.findall(r"^([a-z][\w-]*):", (ROOT / "Makefile").read_text(), re.M))
    problems += [f"{name}: `python -m ld_core {c}` is not a command"
                 for c in COMMAND.findall(text) if c not in COMMANDS]
    problems += [f"{name}: `make {t}` is not a Makefile target" for t in MAKE.findall(code) if t not in targets]
    return problems


def test_every_link_path_command_and_make_target_the_docs_name_exists():
    assert len(PAGES) > 5
    problems = [p for page in PAGES
                for p in _problems_of(page.read_text(encoding="utf-8"), page.parent, str(page.relative_to(ROOT)))]
    assert not problems, "\n".join(problems)


def test_the_link_check_finds_what_is_missing():
    probe = ("# Probe\n[a](nowhere.md) [b](results.md#no-such-heading) [c](#probe) [d](#nothing)\n"
             "`configs/scales/nothing.yaml` `tests/unit/test_docs.py::test_nothing` `configs/models/{gfl,nothing}.yaml`\n"
             "`python -m ld_core no-such-command`\n```bash\nmake no-such-target\n```\n")
    problems = _problems_of(probe, ROOT / "docs", "probe")
    assert len(problems) == 8, problems
    assert all(word in "\n".join(problems) for word in ("nowhere.md", "no-such-heading", "#nothing", "nothing.yaml",
                                                          "test_nothing", "{gfl,nothing}", "no-such-command",
                                                          "no-such-target")), problems


def test_readme_is_short_and_names_the_two_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 200
    assert "make reproduce" in text and "make test" in text


def test_configuration_reference_is_what_the_schemas_generate(tmp_path):
    committed = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert config_reference.render(ROOT / "workflow" / "schemas", ROOT / "docs") == committed, (
        f"docs/configuration.md is stale: {config_reference.COMMAND}")
    # the command writes the same page from a copy laid out like the repository; --check notices a changed description
    schemas, out = tmp_path / "workflow" / "schemas", tmp_path / "docs" / "configuration.md"
    shutil.copytree(ROOT / "workflow" / "schemas", schemas)
    assert main(["config-reference", "--schemas", str(schemas), "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == committed
    assert main(["config-reference", "--schemas", str(schemas), "--out", str(out), "--check"]) == 0
    config = schemas / "config.schema.yaml"
    config.write_text(config.read_text().replace("the seed pool;", "the pool of seeds;"))
    assert main(["config-reference", "--schemas", str(schemas), "--out", str(out), "--check"]) == 1


def _resolved(*argv) -> dict:
    """The settings Snakemake resolves for ``snakemake <argv>`` typed at the repository root."""
    code = """if True:
        import json, re, sys
        from snakemake.cli import parse_args

        def text(value):
            value = sorted(map(repr, value)) if isinstance(value, (set, frozenset)) else value
            return re.sub(" at 0x[0-9a-f]+", "", repr(value))

        _, args = parse_args(sys.argv[1:])
        print(json.dumps({k: text(v) for k, v in sorted(vars(args).items()) if k != "workflow_profile"}))
    """
    proc = subprocess.run([sys.executable, "-c", code, *argv], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.splitlines()[-1])


def test_plain_snakemake_at_the_root_gets_the_workflow_profile_of_make_reproduce():
    plain = _resolved("--cores", "all")
    assert plain == _resolved("--cores", "all", "--workflow-profile", "workflow/profiles/default")
    assert plain["rerun_incomplete"] == "True"
    assert _resolved("--cores", "all", "--workflow-profile", "none")["rerun_incomplete"] == "False"
