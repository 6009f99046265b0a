"""The probe of roles/dagster/files/dagster-environment.py, run as the role runs it (`python3 -`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = (Path(__file__).resolve().parents[2] / "roles/dagster/files/dagster-environment.py").read_text()


def probe(install: Path, venv: Path) -> dict:
    done = subprocess.run([sys.executable, "-", "probe", str(install), str(venv)], input=SCRIPT,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_nothing_installed(tmp_path):
    assert probe(tmp_path / "opt", tmp_path / "opt/venvs/dagster-1.0.0-abc") == {
        "current": "", "venvs": [], "installed": None, "uv": []}


def test_an_installed_release(tmp_path):
    install = tmp_path / "opt"
    old, new = install / "venvs/dagster-1.0.0-aaa", install / "venvs/dagster-1.1.0-bbb"
    for venv in (old, new):
        venv.mkdir(parents=True)
    (install / "venvs/not-a-release").mkdir()
    (new / ".dagsterops-installed").write_text("dagster==1.1.0\ndagster-webserver==1.1.0\n")
    os.symlink(old, install / "current")
    (install / "tools/lib/python3.11/site-packages/uv-0.13.9.dist-info").mkdir(parents=True)
    result = probe(install, new)
    assert result["current"] == str(old)
    assert sorted(v["path"] for v in result["venvs"]) == [str(old), str(new)]
    assert all(isinstance(v["mtime"], float) for v in result["venvs"])
    assert result["installed"] == ["dagster==1.1.0", "dagster-webserver==1.1.0"]
    assert result["uv"] == ["0.13.9"]
    # The release not yet complete: no marker.
    assert probe(install, old)["installed"] is None


def test_an_unknown_command_fails(tmp_path):
    done = subprocess.run([sys.executable, "-", "remove", str(tmp_path)], input=SCRIPT, capture_output=True,
                          text=True, check=False)
    assert done.returncode != 0
    assert "unknown command 'remove'" in done.stderr
