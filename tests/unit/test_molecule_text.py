"""molecule.yml is read as molecule reads it, by the tests and by the benchmark alike."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from dagster_checks import molecule_text  # noqa: E402 - the helpers the verifiers share


def test_variables_defaults_and_dollar_signs():
    text = "a: ${A}\nb: ${B:-debian12}\nc: ${C:-x}\nd: $${NOT_READ}\ne: pa$$word\n"
    assert molecule_text(text, {"A": "/srv/project", "C": "debian13"}) == (
        "a: /srv/project\nb: debian12\nc: debian13\nd: ${NOT_READ}\ne: pa$word\n")


def test_unset_variable_without_default_is_empty():
    assert molecule_text("image: ${MISSING}\n", {}) == "image: \n"
