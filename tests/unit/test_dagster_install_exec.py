"""roles/dagster_code_location/files/dagster-install-exec: the install environment
comes from the file beside it, never from the command line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HELPER = Path(__file__).resolve().parents[2] / "roles/dagster_code_location/files/dagster-install-exec"
# Prints what the command received: its environment variable and its arguments.
SHOW = "import json, os, sys; print(json.dumps([os.environ.get('INSTALL_TOKEN'), sys.argv[1:]]))"


def install(tmp_path, variables):
    directory = tmp_path / "code-location-install"
    directory.mkdir()
    shutil.copy(HELPER, directory / "dagster-install-exec")
    (directory / "install-environment.json").write_text(json.dumps(variables))
    return directory


def test_runs_the_command_with_the_environment_of_the_file(tmp_path):
    directory = install(tmp_path, {"INSTALL_TOKEN": "token-from-the-file", "UV_NO_PROGRESS": True})
    done = subprocess.run([sys.executable, str(directory / "dagster-install-exec"), sys.executable, "-c", SHOW, "a", "b"],
                          capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == ["token-from-the-file", ["a", "b"]]


def test_a_link_runs_the_program_it_is_named_after(tmp_path):
    directory = install(tmp_path, {"INSTALL_TOKEN": "token-for-the-program"})
    # A program named like the link, found on PATH (as git is for the git module).
    programs = tmp_path / "bin"
    programs.mkdir()
    (programs / "show-install").write_text(f"#!{sys.executable}\n{SHOW.replace('; ', chr(10))}\n")
    (programs / "show-install").chmod(0o755)
    os.symlink("dagster-install-exec", directory / "show-install")
    done = subprocess.run([sys.executable, str(directory / "show-install"), "--version"], capture_output=True, text=True,
                          check=True, env=dict(os.environ, PATH=f"{programs}:{os.environ['PATH']}"))
    assert json.loads(done.stdout) == ["token-for-the-program", ["--version"]]


def test_without_a_command_it_explains_itself(tmp_path):
    directory = install(tmp_path, {})
    done = subprocess.run([sys.executable, str(directory / "dagster-install-exec")], capture_output=True, text=True,
                          check=False)
    assert done.returncode != 0 and "dagster-install-exec COMMAND" in done.stderr
