"""dagsterops.dagster.files through ansible-playbook on this machine (local connection):
templates rendered as ansible.builtin.template renders them, directory sources,
check and diff modes, and entries refused with the entry named."""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
USER = pwd.getpwuid(os.getuid()).pw_name
GROUP = grp.getgrgid(os.getgid()).gr_name
RECAP = re.compile(r"ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)")


@pytest.fixture
def project(tmp_path):
    """A playbook directory with templates/ and files/, and the place it writes to."""
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "app.conf.j2").write_text(
        "{{ ansible_managed | comment }}\n{% for name in names %}\n{{ name }}={{ loop.index }}\n{% endfor %}\n")
    tree = tmp_path / "files" / "package"
    (tree / "sub").mkdir(parents=True)
    (tree / "__init__.py").write_text("VALUE = 1\n")
    (tree / "sub" / "data.txt").write_text("data\n")
    (tree / "__pycache__").mkdir()
    (tree / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "out").mkdir()
    return tmp_path


def playbook(project: Path, files: list[dict], extra_vars: dict | None = None) -> Path:
    path = project / "play.yml"
    path.write_text(yaml.safe_dump([{
        "hosts": "localhost", "gather_facts": False, "vars": extra_vars or {"names": ["a", "b"]},
        "tasks": [{"name": "Put the files in place", "dagsterops.dagster.files": {"files": files},
                   "register": "written"},
                  {"name": "Show the result", "ansible.builtin.debug": {"var": "written"}}],
    }]))
    return path


def run(project: Path, *options: str) -> tuple[str, dict]:
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO_ROOT / ".ansible/collections"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
               ANSIBLE_CALLBACK_RESULT_FORMAT="json", ANSIBLE_LOCALHOST_WARNING="false")
    done = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}", *options,
                           str(project / "play.yml")], cwd=project, env=env, capture_output=True, text=True,
                          check=False)
    output = done.stdout + done.stderr
    match = RECAP.search(output)
    assert match, output
    ok, changed, unreachable, failed = map(int, match.groups())
    return output, {"changed": changed, "failed": failed, "rc": done.returncode}


def entry(dest: Path, **extra) -> dict:
    return {"dest": str(dest), "owner": USER, "group": GROUP, "mode": "0644", **extra}


def test_template_file_and_tree_then_nothing_to_do(project):
    out = project / "out"
    playbook(project, [
        entry(out / "app.conf", template="app.conf.j2"),
        entry(out / "copy.txt", src="package/sub/data.txt"),
        entry(out / "inline.txt", content="inline\n"),
        entry(out / "package/", src="package/", directory_mode="0755"),
    ])
    output, recap = run(project)
    assert recap["failed"] == 0 and recap["rc"] == 0, output
    assert recap["changed"] == 1
    # As ansible.builtin.template renders it: comment header, trimmed blocks.
    assert (out / "app.conf").read_text() == "#\n# Ansible managed\n#\na=1\nb=2\n"
    assert (out / "copy.txt").read_text() == "data\n"
    assert (out / "inline.txt").read_text() == "inline\n"
    assert (out / "package/__init__.py").read_text() == "VALUE = 1\n"
    assert (out / "package/sub/data.txt").read_text() == "data\n"
    assert not (out / "package/__pycache__").exists()
    output, recap = run(project)
    assert recap == {"changed": 0, "failed": 0, "rc": 0}, output


def test_check_diff_shows_the_change_and_writes_nothing(project):
    out = project / "out"
    playbook(project, [entry(out / "app.conf", template="app.conf.j2")])
    run(project)
    playbook(project, [entry(out / "app.conf", template="app.conf.j2")], {"names": ["a", "c"]})
    output, recap = run(project, "--check", "--diff")
    assert recap["changed"] == 1 and recap["failed"] == 0, output
    assert "-b=2" in output and "+c=2" in output
    assert (out / "app.conf").read_text().endswith("a=1\nb=2\n")


def test_secret_entries_show_no_content(project):
    out = project / "out"
    secret = "pw-" + os.urandom(6).hex()
    playbook(project, [entry(out / "app.env", content=f"PASSWORD={secret}\n", secret=True, mode="0600")])
    output, recap = run(project, "--diff", "-vvv")
    assert recap["changed"] == 1 and recap["failed"] == 0, output
    assert secret not in output
    assert (out / "app.env").read_text() == f"PASSWORD={secret}\n"


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ([{"dest": "/tmp/x", "owner": "root", "group": "root", "mode": "0644", "content": "a", "src": "b"}],
         "files[0] (/tmp/x): give exactly one of template, src, content"),
        ([{"dest": "/tmp/x", "owner": "root", "group": "root", "mode": "0644"}],
         "files[0] (/tmp/x): give exactly one of template, src, content"),
        ([{"dest": "/tmp/x", "owner": "root", "group": "root", "mode": "0644", "content": "a", "colour": "red"}],
         "files[0] (/tmp/x): unknown keys colour"),
        ([{"dest": "/tmp/x", "state": "directory", "owner": "root", "group": "root", "mode": "0755", "content": "a"}],
         "files[0] (/tmp/x): a directory takes none of template, src, content"),
        ([{"owner": "root", "group": "root", "mode": "0644", "content": "a"}], "files[0] (no dest): dest is required"),
        ([{"dest": "/tmp/x", "owner": "root", "group": "root", "mode": "0644", "template": "missing.j2"}],
         "files[0] (/tmp/x): Could not find or access 'missing.j2'"),
        (["just a string"], "files[0]: must be a mapping, got string"),
    ],
)
def test_bad_entries_are_refused_with_their_index(project, files, expected):
    playbook(project, files)
    output, recap = run(project)
    assert recap["failed"] == 1, output
    assert expected in output
    assert not Path("/tmp/x").exists() or Path("/tmp/x").is_dir()
