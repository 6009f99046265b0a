"""The docker run launcher end to end: the instance host was converged with the
default launcher (prepare.yml), switched to docker with one variable, and each
run now starts in a container of the location's own image on the test host's
Docker engine, reaching PostgreSQL over the scenario's network."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from dagster_checks import PROJECT, ansible_playbook, journal, launch_run, materialized_text, psql, run_status, wait_for_run

HOST = "dagster-docker"
IMAGE = "dagsterops-run-example"
BASE = "dagsterops-systemd:debian12"
ENV_FILE = "/etc/dagster/code-locations/example.env"
PASSWORD_ENV = "DAGSTER_PG_PASSWORD"
LOCATION_UNIT = "dagster-code-location@example.service"


def docker(*args):
    """The Docker CLI of the test host, whose engine the instance host uses."""
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout


def inspect(kind, name):
    return json.loads(docker(kind, "inspect", name))[0]


def advertised_image(host):
    for line in host.file(ENV_FILE).content_string.splitlines():
        if line.startswith("DAGSTER_CURRENT_IMAGE="):
            return json.loads(line.partition("=")[2])
    raise AssertionError(f"no DAGSTER_CURRENT_IMAGE in {ENV_FILE}")


def main_pid(host, unit):
    return int(host.check_output(f"systemctl show -p MainPID --value {unit}"))


@pytest.fixture(scope="module")
def password(host):
    value = host.file("/etc/dagster-postgresql/dagster.password").content_string.strip()
    assert len(value) >= 32
    return value


@pytest.fixture(scope="module")
def docker_run(host):
    """example_job launched through GraphQL: (run id, container inspect, seconds to SUCCESS)."""
    run_id = launch_run(host, "example", "example_job")
    status, seconds, seen = wait_for_run(host, run_id)
    assert status == "SUCCESS", f"{seen}\n{journal(host, 'dagster-daemon')}"
    tags = {t["key"]: t["value"] for t in run_status(host, run_id)["tags"]}
    assert "docker/container_id" in tags, tags
    print(f"docker run {run_id}: {' -> '.join(seen)} in {seconds:.1f} s")
    # Dagster records SUCCESS before the run worker's process has quite ended.
    deadline = time.monotonic() + 60
    while (container := inspect("container", tags["docker/container_id"]))["State"]["Status"] != "exited":
        assert time.monotonic() < deadline, container["State"]
        time.sleep(1)
    return run_id, container, tags


@pytest.fixture(scope="module", autouse=True)
def remove_run_containers():
    """The launcher keeps finished containers (no auto_remove here); remove the scenario's at the end."""
    yield
    ids = docker("ps", "-aq", "--filter", "label=dagsterops.scenario=docker").split()
    if ids:
        docker("rm", "-f", *ids)


# --- the switch -----------------------------------------------------------------------------------


def test_the_switch_went_through_an_upgrade_of_the_environment(host):
    # prepare.yml converged with the default launcher; dagster-docker made a new environment.
    venvs = host.check_output("ls /opt/dagster/venvs").split()
    assert len(venvs) == 2, venvs
    current = host.check_output("readlink /opt/dagster/current")
    assert host.run(f"{current}/bin/python -c 'import dagster_docker'").rc == 0
    dumps = host.check_output("ls /var/backups/dagster").split()
    assert len([d for d in dumps if "-before-1.13.27-" in d]) == 1, dumps


def test_dagster_yaml_names_the_docker_launcher_and_no_secret(host, password):
    text = host.file("/var/lib/dagster/dagster.yaml").content_string
    assert password not in text
    launcher = yaml.safe_load(text)["run_launcher"]
    assert launcher == {
        "module": "dagster_docker",
        "class": "DockerRunLauncher",
        "config": {
            "network": "dagster-docker",
            "env_vars": [PASSWORD_ENV],
            "container_kwargs": {"mem_limit": "1g", "labels": {"dagsterops.scenario": "docker"}},
        },
    }


@pytest.mark.parametrize("unit", ["dagster-webserver.service", "dagster-daemon.service"])
def test_only_the_instance_services_get_the_docker_socket(host, unit):
    assert host.check_output(f"systemctl show -p SupplementaryGroups --value {unit}") == "docker"
    assert host.service(unit).is_running
    groups = host.check_output(f"cat /proc/{main_pid(host, unit)}/status | grep ^Groups:").split()[1:]
    assert host.group("docker").gid in {int(g) for g in groups}


def test_the_code_server_and_the_user_have_no_docker_access(host):
    assert host.check_output(f"systemctl show -p SupplementaryGroups --value {LOCATION_UNIT}") == ""
    assert "docker" not in host.user("dagster").groups


# --- the run image --------------------------------------------------------------------------------


def test_the_run_image_is_built_from_the_base_image_and_advertised(host):
    image = advertised_image(host)
    name, _, tag = image.partition(":")
    assert name == IMAGE and len(tag) == 12, image
    built, base = inspect("image", image), inspect("image", BASE)
    # FROM the project's own base image: its layers come first.
    assert built["RootFS"]["Layers"][: len(base["RootFS"]["Layers"])] == base["RootFS"]["Layers"]
    assert built["Config"]["User"] == "65534:65534"
    pid = main_pid(host, LOCATION_UNIT)
    assert f"DAGSTER_CURRENT_IMAGE={image}" in host.check_output(f"tr '\\0' '\\n' < /proc/{pid}/environ")


# --- a run in a container -------------------------------------------------------------------------


def test_the_run_executed_in_a_new_container_with_dagsters_labels(host, docker_run):
    run_id, container, tags = docker_run
    labels = container["Config"]["Labels"]
    assert labels["dagster/run_id"] == run_id
    assert labels["dagster/job_name"] == "example_job"
    assert labels["dagsterops.scenario"] == "docker"
    assert container["Config"]["Image"] == advertised_image(host) == tags["dagster/image"]
    assert container["State"]["Status"] == "exited" and container["State"]["ExitCode"] == 0
    assert container["HostConfig"]["Memory"] == 1024**3
    assert list(container["NetworkSettings"]["Networks"]) == ["dagster-docker"]


def test_the_asset_recorded_the_container_not_the_instance_host(host, docker_run):
    run_id, container, _ = docker_run
    hostnames = materialized_text(host, run_id)
    assert hostnames == [container["Config"]["Hostname"]], hostnames
    assert hostnames[0] != HOST


def test_the_run_is_stored_in_postgresql(host, docker_run):
    run_id = docker_run[0]
    assert psql(host, f"SELECT status FROM runs WHERE run_id='{run_id}'") == "SUCCESS"
    assert int(psql(host, f"SELECT count(*) FROM event_logs WHERE run_id='{run_id}'")) > 10


def test_no_password_in_the_container_beyond_the_forwarded_variable(docker_run, password):
    container = docker_run[1]
    assert [e for e in container["Config"]["Env"] if password in e] == [f"{PASSWORD_ENV}={password}"]
    without_env = dict(container, Config=dict(container["Config"], Env=[]))
    assert password not in json.dumps(without_env)


def test_postgresql_lets_in_the_scenarios_network_only(host):
    rules = psql(
        host,
        "SELECT type, coalesce(address, ''), coalesce(netmask, ''), auth_method FROM pg_hba_file_rules "
        "WHERE error IS NULL AND type LIKE 'host%'",
    ).splitlines()
    tcp = [r for r in rules if r.split("|")[1] not in ("127.0.0.1", "::1")]
    assert tcp == ["hostssl|10.213.48.0|255.255.255.0|scram-sha-256"], tcp


# --- a code change --------------------------------------------------------------------------------


def test_a_code_change_builds_a_new_tag_that_the_next_run_uses(host):
    before = advertised_image(host)
    webserver, daemon = main_pid(host, "dagster-webserver.service"), main_pid(host, "dagster-daemon.service")
    with tempfile.TemporaryDirectory() as tmp:
        changed = Path(tmp) / "dagster_example"
        shutil.copytree(PROJECT / "roles/dagster/files/dagster_example", changed)
        with (changed / "__init__.py").open("a") as code:
            code.write(f"\n# revision {time.time()}\n")
        locations = yaml.safe_load((Path(__file__).parents[1] / "molecule.yml").read_text())
        locations = locations["provisioner"]["inventory"]["group_vars"]["all"]["dagster_code_locations"]
        locations[0]["source"]["directory"] = str(changed)
        rc, output, seconds = ansible_playbook(PROJECT / "playbooks/site.yml", {"dagster_code_locations": locations})
    assert rc == 0, output[-4000:]
    print(f"re-converge with changed code: {seconds:.0f} s")
    after = advertised_image(host)
    assert after != before and after.startswith(f"{IMAGE}:"), (before, after)
    inspect("image", after)
    # The code server restarted with the new image; the instance did not.
    assert (main_pid(host, "dagster-webserver.service"), main_pid(host, "dagster-daemon.service")) == (webserver, daemon)
    run_id = launch_run(host, "example", "example_job")
    status, _, seen = wait_for_run(host, run_id)
    assert status == "SUCCESS", seen
    tags = {t["key"]: t["value"] for t in run_status(host, run_id)["tags"]}
    assert tags["dagster/image"] == after
