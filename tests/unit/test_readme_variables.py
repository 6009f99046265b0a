"""The README's variable tables are the argument specs, as scripts/readme_variables.py writes them."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import readme_variables  # noqa: E402


def test_the_tables_match_the_argument_specs():
    current = (ROOT / "README.md").read_text()
    assert readme_variables.render(current) == current, "run scripts/readme_variables.py"


def test_a_changed_description_is_drift(tmp_path):
    roles = tmp_path / "roles" / "demo" / "meta"
    roles.mkdir(parents=True)
    spec = roles / "argument_specs.yml"
    readme = f"x\n{readme_variables.BEGIN}\n{readme_variables.END}\ny\n"
    spec.write_text("argument_specs:\n  main:\n    options:\n      demo_port: {type: int, default: 1, description: Port.}\n")
    written = readme_variables.render(readme, root=tmp_path)
    assert "| `demo_port` | int | `1` | Port. |" in written
    spec.write_text(spec.read_text().replace("Port.", "The port."))
    assert readme_variables.render(written, root=tmp_path) != written
