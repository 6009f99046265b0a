#!/usr/bin/env python3
"""Write each role's variable table into README.md from its argument specs.

    scripts/readme_variables.py          rewrite the tables in README.md
    scripts/readme_variables.py --check  exit 1 when README.md is out of date

The tables stand between `<!-- BEGIN VARIABLES -->` and `<!-- END VARIABLES -->`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- BEGIN VARIABLES -->", "<!-- END VARIABLES -->"


def _default(option):
    if "default" not in option:
        return "(required)" if option.get("required") else ""
    return f"`{json.dumps(option['default'])}`"


def _description(option):
    text = option.get("description", "")
    if isinstance(text, list):
        text = " ".join(text)
    if "choices" in option:
        text += " One of: " + ", ".join(f"`{c}`" for c in option["choices"]) + "."
    return text.replace("|", "\\|")


def role_tables(root=ROOT):
    parts = []
    for spec_file in sorted(root.glob("roles/*/meta/argument_specs.yml")):
        role = spec_file.parent.parent.name
        spec = yaml.safe_load(spec_file.read_text())["argument_specs"]["main"]
        parts.append(f"### `dagsterops.dagster.{role}`\n\n{spec.get('short_description', '')}\n")
        parts.append("| Variable | Type | Default | Description |\n|---|---|---|---|")
        for name, option in spec.get("options", {}).items():
            kind = option.get("type", "str")
            if kind == "list" and "elements" in option:
                kind = f"list of {option['elements']}"
            parts.append(f"| `{name}` | {kind} | {_default(option)} | {_description(option)} |")
        parts.append("")
    return "\n".join(parts).rstrip() + "\n"


def render(readme_text, root=ROOT):
    head, rest = readme_text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{role_tables(root)}{END}{tail}"


def main(argv):
    readme = ROOT / "README.md"
    current = readme.read_text()
    wanted = render(current)
    if "--check" in argv:
        if current != wanted:
            print("README.md's variable tables differ from the argument specs; run scripts/readme_variables.py")
            return 1
        return 0
    readme.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
