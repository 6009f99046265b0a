"""The collection as a user applies it: the built artifact, a playbook of the
user's own, SSH as a non-root user with sudo, pipelining off, Debian 13."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml
from dagster_checks import launch_run, locations, wait_for_run

EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
SCENARIO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _installed_collection():
    result = subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "list", "dagsterops.dagster", "--format", "json"],
        capture_output=True, text=True, check=True,
        env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(EPHEMERAL / "collections")),
    )
    return json.loads(result.stdout)


def test_the_roles_come_from_the_built_artifact_alone():
    found = _installed_collection()
    # Only the installed copy is on the collections path: no link to the working tree.
    assert list(found) == [str(EPHEMERAL / "collections" / "ansible_collections")], found
    installed = EPHEMERAL / "collections" / "ansible_collections" / "dagsterops" / "dagster"
    assert not installed.is_symlink()
    assert (installed / "MANIFEST.json").is_file() and (installed / "FILES.json").is_file()
    assert not (installed / "molecule").exists(), "the artifact holds what galaxy.yml leaves out"


def test_ansible_logged_in_as_the_user_and_became_root_with_sudo(host):
    with host.sudo():
        auth = host.check_output("journalctl -u ssh --no-pager -o cat")
        sudo = host.check_output("journalctl _COMM=sudo --no-pager -o cat")
    assert "Accepted publickey for deploy" in auth
    assert "Accepted publickey for root" not in auth
    # Pipelining off: each task's module is a file the user uploads, then runs as root through sudo.
    assert "deploy : PWD=" in sudo and "USER=root" in sudo and "BECOME-SUCCESS-" in sudo
    assert "/.ansible/tmp/" in sudo


def test_debian_13_runs_a_job_to_success(host):
    assert host.system_info.distribution == "debian" and host.system_info.release.startswith("13")
    assert locations(host)["example"]["locationOrLoadError"]["__typename"] == "RepositoryLocation"
    run_id = launch_run(host, "example", "example_job")
    status, _seconds, seen = wait_for_run(host, run_id, timeout=300)
    assert status == "SUCCESS", seen


def test_two_daemons_on_one_database_stop_a_playbook_of_ones_own(tmp_path):
    """The single-daemon guard holds without site.yml: two instance hosts of the
    play on one database both running the daemon stop the play before any change."""
    address = "10.213.49.10"
    host_vars = yaml.safe_load((SCENARIO / "molecule.yml").read_text().replace(
        "${MOLECULE_EPHEMERAL_DIRECTORY}", str(EPHEMERAL)))["provisioner"]["inventory"]["host_vars"]
    login = host_vars["dagster-user-debian13"]
    shared = {"dagster_postgres_host": address, "dagster_postgres_password": "not-used-the-play-stops-first"}
    inventory = {"dagster": {"hosts": {"web-a": {**login, **shared}, "web-b": {**login, **shared}}}}
    path = tmp_path / "inventory.yml"
    path.write_text(yaml.safe_dump(inventory))
    result = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(path), str(SCENARIO / "converge.yml"), "--check"],
        capture_output=True, text=True, check=False,
        env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(EPHEMERAL / "collections"), ANSIBLE_NOCOLOR="true",
                 ANSIBLE_FORCE_COLOR="false"),
    )
    output = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    assert result.returncode != 0, output[-3000:]
    assert "web-a, web-b would each run dagster-daemon" in output, output[-3000:]
    recap = [line for line in output.splitlines() if line.startswith(("web-a ", "web-b "))]
    assert len(recap) == 2 and all("changed=0" in line for line in recap), recap
