"""The built artifact installs, and its roles and filters resolve by FQCN."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _run(args, cwd, env=None):
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{' '.join(map(str, args))}\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    work = tmp_path_factory.mktemp("collection")
    _run([BIN / "ansible-galaxy", "collection", "build", "--output-path", work, ROOT], cwd=work)
    artifacts = list(work.glob("dagsterops-dagster-*.tar.gz"))
    assert len(artifacts) == 1, artifacts
    target = work / "collections"
    _run(
        [BIN / "ansible-galaxy", "collection", "install", "--force", "--no-deps", "-p", target, artifacts[0]],
        cwd=work,
    )
    config = work / "ansible.cfg"
    config.write_text("[defaults]\n")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=f"{target}", ANSIBLE_CONFIG=f"{config}")
    return work, target, artifacts[0], env


def test_artifact_leaves_out_tests_and_harness(installed):
    _, target, _, _ = installed
    tree = target / "ansible_collections" / "dagsterops" / "dagster"
    for name in ("roles/dagster/tasks/main.yml", "roles/dagster_postgresql/tasks/main.yml",
                 "plugins/filter/dagster_workspace.py", "playbooks/site.yml", "meta/runtime.yml"):
        assert (tree / name).is_file(), name
    for name in ("molecule", "tests", "scripts", ".ci", ".venv"):
        assert not (tree / name).exists(), name


def test_roles_resolve_by_fqcn(installed):
    work, _, _, env = installed
    playbook = work / "play.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  roles:\n"
        "    - dagsterops.dagster.dagster_postgresql\n    - dagsterops.dagster.dagster\n"
    )
    _run([BIN / "ansible-playbook", "--syntax-check", "-i", "localhost,", playbook], cwd=work, env=env)


def test_filters_run_from_the_installed_artifact(installed):
    work, _, _, env = installed
    playbook = work / "filters.yml"
    playbook.write_text(
        "- hosts: localhost\n  gather_facts: false\n  connection: local\n  tasks:\n"
        "    - ansible.builtin.assert:\n        that:\n"
        "          - (locations | dagsterops.dagster.dagster_workspace).load_from[0].python_module.location_name"
        " == 'example'\n"
        "          - ('1.13.27' | dagsterops.dagster.dagster_library_version) == '0.29.27'\n"
        "      vars:\n        locations: [{name: example, type: module, module: dagster_example}]\n"
    )
    _run([BIN / "ansible-playbook", "-i", "localhost,", playbook], cwd=work, env=env)


@pytest.mark.parametrize(
    "name", sorted(path.stem for path in (ROOT / "plugins" / "filter").glob("*.py") if path.stem != "__init__")
)
def test_filter_documentation(installed, name):
    work, _, _, env = installed
    out = _run([BIN / "ansible-doc", "-t", "filter", f"dagsterops.dagster.{name}"], cwd=work, env=env)
    assert name in out


def test_role_argument_specs_documented(installed):
    work, _, _, env = installed
    out = _run([BIN / "ansible-doc", "-t", "role", "dagsterops.dagster.dagster"], cwd=work, env=env)
    assert "dagster_webserver_port" in out
    shutil.rmtree(work / "collections", ignore_errors=True)
