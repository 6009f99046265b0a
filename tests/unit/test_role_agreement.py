"""The dagster and dagster_code_location roles derive the same settings from one inventory.

A code host reads the instance's database settings and the lost run check's rule
from the instance hosts' variables. These tests render both roles' own variables
(defaults as the inventory's group_vars/all, vars/main.yml as the play's) with
ansible-playbook over an inventory of instance and code hosts, and compare what
each role would write.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ROLES = REPO_ROOT / "roles"

# What each host reports: the dagster role's settings on instance hosts, the code-location role's on code hosts.
REPORT = """{{ {
  'instance': {'postgres': _dagster_postgres, 'check': _dagster_lost_run_check}
              if inventory_hostname in groups['dagster_instance'] else none,
  'code': {'postgres': _dagster_code_location_instance_postgres, 'check': _dagster_code_location_lost_run_check}
          if inventory_hostname in groups['dagster_code_locations'] else none,
} | to_json }}"""


def render(tmp_path: Path, inventory: dict) -> dict:
    """Each host's report for an inventory in YAML form."""
    inventory_dir = tmp_path / "inventory"
    (inventory_dir / "group_vars" / "all").mkdir(parents=True)
    (inventory_dir / "hosts.yml").write_text(yaml.safe_dump(inventory))
    for role in ("dagster", "dagster_code_location"):
        (inventory_dir / "group_vars" / "all" / f"{role}.yml").write_text((ROLES / role / "defaults/main.yml").read_text())
    out = tmp_path / "out"
    out.mkdir()
    play = [{
        "hosts": "all", "gather_facts": False,
        "vars_files": [str(ROLES / "dagster/vars/main.yml"), str(ROLES / "dagster_code_location/vars/main.yml")],
        "tasks": [{"name": "Report", "delegate_to": "localhost",
                   "ansible.builtin.copy": {"content": REPORT, "dest": f"{out}/{{{{ inventory_hostname }}}}.json",
                                            "mode": "0644"}}],
    }]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO_ROOT / ".ansible/collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    done = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(inventory_dir), "-c", "local",
         "-e", f"ansible_python_interpreter={sys.executable}", str(tmp_path / "play.yml")],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    return {path.stem: json.loads(path.read_text()) for path in out.glob("*.json")}


def servers(*names: str) -> list[dict]:
    """The code-location role's servers of a host, as its preflight sets them (the fields read here)."""
    return [{"name": name} for name in names]


def inventory(instance_vars: dict, code_vars: dict | None = None, both: dict | None = None) -> dict:
    """An instance host `inst`, a code host `code`, and optionally `both`, in both groups."""
    instance_hosts = {"inst": instance_vars}
    code_hosts = {"code": code_vars or {"__dagster_code_location_servers": servers("a", "b")}}
    if both is not None:
        instance_hosts["both"] = both
        code_hosts["both"] = both
    return {"all": {"children": {
        "dagster_instance": {"hosts": instance_hosts},
        "dagster_code_locations": {"hosts": code_hosts},
    }}}


def test_a_code_host_reads_the_instances_database_as_the_instance_does(tmp_path):
    reports = render(tmp_path, inventory({
        "dagster_postgres_host": "db.example.net", "dagster_postgres_port": 6432,
        "dagster_postgres_database": "orchestration", "dagster_postgres_params": {"connect_timeout": 5},
    }))
    instance = reports["inst"]["instance"]["postgres"]
    assert reports["code"]["code"]["postgres"] == instance
    assert instance == {
        "host": "db.example.net", "port": 6432, "database": "orchestration", "user": "dagster",
        "password_env": "DAGSTER_PG_PASSWORD",
        "params": {"sslmode": "verify-full", "sslrootcert": "/etc/dagster/postgresql-ca.crt",
                   "channel_binding": "require", "connect_timeout": 5},
    }


def test_with_nothing_set_a_code_host_gets_the_dagster_roles_defaults(tmp_path):
    reports = render(tmp_path, inventory({}))
    assert reports["code"]["code"]["postgres"] == reports["inst"]["instance"]["postgres"]
    assert reports["inst"]["instance"]["postgres"]["host"] == "/run/postgresql"


def test_the_filters_defaults_are_the_dagster_roles(repo_root):
    import dagster_instance

    defaults = yaml.safe_load((repo_root / "roles/dagster/defaults/main.yml").read_text())
    assert dagster_instance.INSTANCE_DEFAULTS == {name: defaults[name] for name in dagster_instance.INSTANCE_DEFAULTS}


def test_the_instance_checks_its_own_runs_and_a_code_host_its_servers_at_the_shortest_period(tmp_path):
    # inst: the example (a module location) runs there; a second instance host with a longer interval.
    reports = render(tmp_path, {"all": {"children": {
        "dagster_instance": {"hosts": {
            "inst": {"dagster_example_location": True, "dagster_run_monitoring_poll_interval": 45},
            "inst2": {"dagster_run_monitoring_poll_interval": 90, "dagster_daemon_enabled": False},
        }},
        "dagster_code_locations": {"hosts": {"code": {"__dagster_code_location_servers": servers("a")}}},
    }}})
    assert reports["inst"]["instance"]["check"] == {"check": "instance", "period": 45}
    # inst2 runs no daemon: nothing launches there, and it has no location of its own.
    assert reports["inst2"]["instance"]["check"]["check"] is None
    assert reports["code"]["code"]["check"] == {"check": "code_host", "period": 45}


def test_a_host_in_both_groups_is_left_to_the_dagster_roles_check(tmp_path):
    both = {"dagster_example_location": True, "__dagster_code_location_servers": servers("c")}
    reports = render(tmp_path, inventory({"dagster_daemon_enabled": False}, both=both))
    assert reports["both"]["instance"]["check"]["check"] == "instance"
    assert reports["both"]["code"]["check"]["check"] == "instance"
    assert reports["code"]["code"]["check"]["check"] == "code_host"


@pytest.mark.parametrize(
    ("instance_vars", "why"),
    [
        ({"dagster_run_launcher": "docker"}, "runs in containers, not worker processes"),
        ({"dagster_run_monitoring_enabled": False}, "run monitoring off"),
    ],
)
def test_no_code_host_check_where_an_instance_does_not_run_workers_with_monitoring(tmp_path, instance_vars, why):
    reports = render(tmp_path, inventory(instance_vars))
    assert reports["code"]["code"]["check"]["check"] is None, why


def test_a_code_host_without_servers_or_with_the_check_off_runs_none(tmp_path):
    reports = render(tmp_path, inventory({}, code_vars={"__dagster_code_location_servers": []}))
    assert reports["code"]["code"]["check"]["check"] is None
    reports = render(tmp_path / "off", inventory({}, code_vars={
        "__dagster_code_location_servers": servers("a"), "dagster_code_location_fail_lost_runs": False}))
    assert reports["code"]["code"]["check"]["check"] is None
