#!/usr/bin/env python3
"""Every documented option of the collection has a description.

Reads each role's meta/argument_specs.yml (every entry point) and the
DOCUMENTATION of each filter, module and action plugin, and prints one line
per option (suboptions included) whose description is missing or empty.
Exits 1 when there is any. scripts/docs.sh runs it before the docs build.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _empty(description) -> bool:
    if isinstance(description, str):
        return not description.strip()
    if isinstance(description, list):
        return not description or any(not isinstance(line, str) or not line.strip() for line in description)
    return True


def _walk(options, where: str):
    for name, spec in (options or {}).items():
        here = f"{where}.{name}"
        if not isinstance(spec, dict) or _empty(spec.get("description")):
            yield f"{here}: no description"
            continue
        yield from _walk(spec.get("options") or spec.get("suboptions"), here)


def _documentation(path: Path):
    """The DOCUMENTATION string of a plugin file, without importing it."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "DOCUMENTATION" for t in node.targets):
            return yaml.safe_load(ast.literal_eval(node.value))
    return None


def problems(root: Path = ROOT):
    for spec_file in sorted(root.glob("roles/*/meta/argument_specs.yml")):
        role = spec_file.parents[1].name
        specs = (yaml.safe_load(spec_file.read_text()) or {}).get("argument_specs") or {}
        if not specs:
            yield f"{role}: no argument specs"
        for entry, spec in specs.items():
            where = f"{role}:{entry}"
            if _empty((spec or {}).get("short_description")):
                yield f"{where}: no short_description"
            yield from _walk((spec or {}).get("options"), where)
    for plugin in sorted(root.glob("plugins/*/*.py")):
        if plugin.name.startswith("_") or plugin.parent.name in ("module_utils", "action"):
            continue
        doc = _documentation(plugin)
        where = str(plugin.relative_to(root))
        if doc is None:
            yield f"{where}: no DOCUMENTATION"
            continue
        if _empty(doc.get("short_description")) or _empty(doc.get("description")):
            yield f"{where}: no short_description or description"
        yield from _walk(doc.get("options"), where)


def main() -> int:
    found = list(problems())
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
