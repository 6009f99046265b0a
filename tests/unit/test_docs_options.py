"""Every role option and plugin option has a description (scripts/docs_options.py)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import docs_options  # noqa: E402


def test_every_option_of_the_collection_is_described():
    assert list(docs_options.problems()) == []


def test_an_empty_or_missing_description_is_found(tmp_path):
    meta = tmp_path / "roles" / "demo" / "meta"
    meta.mkdir(parents=True)
    (meta / "argument_specs.yml").write_text(
        "argument_specs:\n  main:\n    short_description: Demo.\n    options:\n"
        "      demo_port: {type: int, description: ''}\n"
        "      demo_host: {type: str}\n"
        "      demo_map:\n        type: dict\n        description: A map.\n        options:\n"
        "          inner: {type: str, description: [' ']}\n"
    )
    assert list(docs_options.problems(tmp_path)) == [
        "demo:main.demo_port: no description",
        "demo:main.demo_host: no description",
        "demo:main.demo_map.inner: no description",
    ]
