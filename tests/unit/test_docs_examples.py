"""The YAML examples of the README and the docs pages parse, and every role
variable they set is one the roles' argument specs describe."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs" / "docsite" / "rst").glob("*.rst"))]
VARIABLE = re.compile(r"^dagster_[a-z0-9_]+\Z")


def _role_variables() -> set[str]:
    names = set()
    for spec_file in ROOT.glob("roles/*/meta/argument_specs.yml"):
        for entry in (yaml.safe_load(spec_file.read_text())["argument_specs"] or {}).values():
            names.update((entry or {}).get("options") or {})
    return names


def _markdown_blocks(text: str):
    for match in re.finditer(r"(?ms)^```ya?ml\n(.*?)^```", text):
        yield text.count("\n", 0, match.start()) + 2, match.group(1)


def _rst_blocks(text: str):
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^\s*\.\. code(-block)?:: ya?ml\s*$", line):
            body = []
            for following in lines[index + 1:]:
                if following.strip() and not following.startswith((" ", "\t")):
                    break
                body.append(following)
            yield index + 2, textwrap.dedent("\n".join(body)).strip("\n") + "\n"


def _examples():
    for page in PAGES:
        text = page.read_text()
        blocks = _markdown_blocks(text) if page.suffix == ".md" else _rst_blocks(text)
        for line, block in blocks:
            yield pytest.param(block, id=f"{page.relative_to(ROOT)}:{line}")


EXAMPLES = list(_examples())


def _is_group(key, value, under) -> bool:
    """An inventory group: a key under `children`, or one holding hosts, vars or children."""
    return under == "children" or (isinstance(value, dict) and bool({"hosts", "vars", "children"} & set(value)))


def _variables(node, under=None):
    """The dagster_* keys set anywhere in the example, except inventory group names."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str) and VARIABLE.match(key) and not _is_group(key, value, under):
                yield key
            yield from _variables(value, key)
    elif isinstance(node, list):
        for item in node:
            yield from _variables(item)


def test_the_pages_have_examples():
    assert len(EXAMPLES) >= 10


@pytest.mark.parametrize("block", EXAMPLES)
def test_an_example_parses_and_sets_only_documented_variables(block):
    documents = list(yaml.safe_load_all(block))
    assert any(document is not None for document in documents)
    unknown = sorted({name for document in documents for name in _variables(document)} - _role_variables())
    assert unknown == []


def test_an_unknown_variable_is_found_and_a_group_is_not_one():
    example = yaml.safe_load(
        "all:\n  children:\n    dagster_instance:\n      vars: {dagster_webserver_portt: 1}\n"
        "dagster_tailscale:\n  hosts: {h1: null}\n  vars: {dagster_tailscale_serve_modee: node}\n")
    assert sorted(set(_variables(example)) - _role_variables()) == ["dagster_tailscale_serve_modee",
                                                                     "dagster_webserver_portt"]
