"""`ld_core config-reference`: the configuration reference page, generated from the schemas' descriptions.

Every ``workflow/schemas/*.schema.yaml`` becomes one section: the schema's own description, then one table row
per key (dotted path, type, default, description). A ``$defs`` entry is written out where it is first used;
later uses point there. ``--out`` writes the page (``docs/configuration.md``); ``--check`` only compares and
exits 1 when the committed page differs from what would be written.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml

from ..config.file_checks import SCHEMA_NAMES
from ..errors import ConfigError
from ..files import atomic_write_text, load_yaml_file

COMMAND = "python -m ld_core config-reference --out docs/configuration.md"
INTRO = f"""# Configuration reference

For anyone changing a setting: the pipeline config (`configs/config.yaml`, `--config key=value`,
`--configfile`), a scale profile (`configs/scales/`), the experiment matrix, the claims, the paper's numbers,
a dataset file of your own, the model files (`configs/models/`).

This page is generated from the descriptions in `workflow/schemas/*.schema.yaml` by `{COMMAND}`:
edit the schemas, not this page (`tests/unit/test_docs.py` fails when the two differ). Every file is checked
against its schema when the Snakefile is parsed, so a mistake fails `snakemake -n` in seconds with one line
naming the file and the key. Keys are dotted paths; `<name>` stands for a key you choose, `[]` for the items
of a list. How the files fit together, and how to add a run, a table or a claim:
[development.md](development.md#how-the-config-files-fit-together).
"""
_TYPE_WORDS = {"object": "mapping", "array": "list", "string": "string", "integer": "integer", "number": "number",
               "boolean": "boolean", "null": "null"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--schemas", default="workflow/schemas", help="folder of the *.schema.yaml files")
    parser.add_argument("--out", help="write the page here (default: stdout)")
    parser.add_argument("--check", action="store_true",
                        help="compare with --out instead of writing it; exit 1 if it differs")


def _code(value) -> str:
    """A value as YAML in flow style, in backticks (``[table1, table2]``, ``null``, ``embedded``)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6, allow_unicode=True, sort_keys=False)
    return f"`{text.removesuffix(chr(10)).removesuffix(chr(10) + '...')}`"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


class _Section:
    """The rows of one schema; ``$ref`` targets with keys are expanded once."""

    def __init__(self, name: str, schema: dict, schemas: dict):
        self.name, self.root, self.schemas = name, schema, schemas
        self.expanded: dict = {}

    def resolve(self, ref: str) -> dict:
        """The schema a ``$ref`` points to (in this file or another of the folder)."""
        file, _, pointer = ref.partition("#")
        root = self.root if not file else self.schemas.get(file.removesuffix(".schema.yaml"))
        if root is None:
            raise ConfigError(f"{self.name}.schema.yaml: $ref {ref!r} names no schema of the folder")
        node = root
        for part in [p for p in pointer.split("/") if p]:
            if not isinstance(node, dict) or part not in node:
                raise ConfigError(f"{self.name}.schema.yaml: $ref {ref!r} points nowhere")
            node = node[part]
        return node

    def deref(self, node: dict) -> dict:
        """``node`` with its ``$ref`` replaced by the target (the node's own keys win); ``{}`` for a boolean schema."""
        if not isinstance(node, dict):
            return {}
        if "$ref" not in node:
            return node
        return {**self.deref(self.resolve(node["$ref"])), **{k: v for k, v in node.items() if k != "$ref"}}

    def type_text(self, node: dict) -> str:
        node = self.deref(node)
        if "enum" in node:
            return "one of " + ", ".join(_code(v) for v in node["enum"])
        if "const" in node:
            return _code(node["const"])
        for key in ("anyOf", "oneOf"):
            if key in node:
                return " or ".join(self.type_text(branch) for branch in node[key])
        types = node.get("type")
        if types is None:
            typed = [self.type_text(m) for m in node.get("allOf", []) if "type" in self.deref(m)]
            return typed[0] if typed else ("mapping" if "properties" in node else "any")
        words = []
        for t in types if isinstance(types, list) else [types]:
            word = _TYPE_WORDS.get(t, t)
            if t == "array":
                count = node.get("minItems") if node.get("minItems") == node.get("maxItems") else None
                item = self.type_text(node["items"]) if "items" in node else ""
                word = f"list of {count} {item}" if count else (f"list of {item}" if item else "list")
            if t in ("integer", "number"):
                word += ",".join(f" {sign} {node[key]}" for key, sign in (
                    ("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<"))
                    if key in node)
            words.append(word)
        return " or ".join(words)

    def children(self, node: dict):
        """(key, schema, required) of the keys below ``node``: its properties (with allOf / anyOf / oneOf
        branches'), a mapping's ``<name>`` values, a list's ``[]`` items."""
        node = self.deref(node)
        branches = [self.deref(b) for b in node.get("allOf", []) + node.get("anyOf", []) + node.get("oneOf", [])]
        required = set(node.get("required", [])).union(*(b.get("required", []) for b in branches))
        for branch in branches + [node]:
            if "object" in _types(branch):
                yield from ((k, v, k in required) for k, v in branch.get("properties", {}).items())
        if isinstance(node.get("additionalProperties"), dict):
            yield "<name>", node["additionalProperties"], False
        items = node.get("items")
        if isinstance(items, dict) and any(True for _ in self.children(items)):
            yield "[]", items, False

    def rows(self, node: dict, path: str = "", required: bool = False, when: str = "") -> list[list[str]]:
        """The table rows of ``node`` at ``path`` and of every key below it (``when``: its condition)."""
        node = node if isinstance(node, dict) else {}
        full = self.deref(node)
        refs = [r for r in [node.get("$ref")] + [m.get("$ref") for m in node.get("allOf", [])] if r]
        has_keys = any(True for _ in self.children(full))
        seen = next((self.expanded[r] for r in refs if r in self.expanded), None) if has_keys else None
        other = next((r.partition("#")[0] for r in refs if not r.startswith("#")), None) if has_keys else None
        out = []
        if path:
            text = " ".join(str(full.get("description", "")).split())
            if when:
                text = f"When {when}" + (f": {text}" if text else ".")
            if seen or other:
                where = f"as `{seen}`" if seen else f"see [{other}](#{other.replace('.', '')})"
                text = (text + " " if text else "") + f"Its keys: {where}."
            kind = self.type_text(full) + (", required" if required else "")
            out.append([f"`{path}`", _cell(kind), _code(full["default"]) if "default" in full else "",
                        _cell(text)])
        if seen or other:
            return out
        self.expanded.update((r, path or "(top level)") for r in refs)
        for key, child, req in self.children(full):
            out += self.rows(child, _join(path, key), req)
        for rule in full.get("allOf", []):  # if/then: the keys whose schema depends on another key's value
            then = rule.get("then", {})
            for key, child in then.get("properties", {}).items():
                if "$ref" in child or "$ref" in child.get("items", {}):
                    out += self.rows(child, _join(path, key), key in then.get("required", []),
                                     _condition(rule.get("if", {})))
        return out


def _types(node: dict) -> list:
    types = node.get("type", "object")
    return types if isinstance(types, list) else [types]


def _join(path: str, key: str) -> str:
    return f"{path}{'' if not path or key == '[]' else '.'}{key}"


def _condition(node: dict, path: str = "") -> str:
    """``if: {properties: {format: {const: coco}}}`` as ``format: coco``."""
    parts = []
    for key, sub in node.get("properties", {}).items():
        if "const" in sub:
            parts.append(f"{_join(path, key)}: {sub['const']}")
        else:
            parts.append(_condition(sub, _join(path, key)))
    return ", ".join(p for p in parts if p)


def _load(schema_dir: Path) -> dict:
    files = sorted(schema_dir.glob("*.schema.yaml"))
    if not files:
        raise ConfigError(f"{schema_dir}: no *.schema.yaml files")
    names = [p.name.removesuffix(".schema.yaml") for p in files]
    order = [n for n in SCHEMA_NAMES if n in names] + [n for n in names if n not in SCHEMA_NAMES]
    return {name: load_yaml_file(schema_dir / f"{name}.schema.yaml", "schema") for name in order}


def render(schema_dir: str | os.PathLike, page_dir: str | os.PathLike = "docs") -> str:
    """The reference page for the schemas of ``schema_dir``, its links relative to ``page_dir``."""
    schema_dir = Path(schema_dir)
    schemas = _load(schema_dir)
    parts = [INTRO, "Schemas: " + ", ".join(f"[{n}](#{n}schemayaml)" for n in schemas) + ".\n"]
    for name, schema in schemas.items():
        link = Path(os.path.relpath(schema_dir / f"{name}.schema.yaml", page_dir)).as_posix()
        parts.append(f"## {name}.schema.yaml\n\n[`workflow/schemas/{name}.schema.yaml`]({link}): "
                     f"{' '.join(str(schema.get('description', '')).split())}\n")
        rows = _Section(name, schema, schemas).rows(schema)
        table = ["| key | type | default | description |", "|---|---|---|---|"]
        table += ["| " + " | ".join(row) + " |" for row in rows]
        parts.append("\n".join(table) + "\n")
    return "\n".join(parts)


def run(args: argparse.Namespace) -> int:
    page_dir = Path(args.out).parent if args.out else Path(".")
    text = render(args.schemas, page_dir)
    if args.check:
        if not args.out:
            raise ConfigError("config-reference: --check needs --out (the page to compare)")
        current = Path(args.out).read_text(encoding="utf-8") if Path(args.out).is_file() else None
        if current != text:
            print(f"{args.out}: differs from the schemas; regenerate it: {COMMAND}", file=sys.stderr)
            return 1
        return 0
    if args.out:
        atomic_write_text(args.out, text)
    else:
        sys.stdout.write(text)
    return 0
