"""The docker run launcher end to end: the instance host was converged with the
default launcher (prepare.yml), switched to docker with one variable, and each
run now starts in a container of the location's own image on the test host's
Docker engine, reaching PostgreSQL over the scenario's network with TLS
(verify-full). No secret shows in `docker inspect` of a run container (the
password is in a read-only pgpass file) nor in `docker history` of the run
image (the install environment is a BuildKit secret)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from dagster_checks import (PROJECT, ansible_playbook, journal, launch_run, materialized_text, psql, run_status,
                            scenario_config, wait_for_run)

HOST = "dagster-docker"
IMAGE = "dagsterops-run-example"
ENV_FILE = "/etc/dagster/code-locations/example.env"
PASSWORD_ENV = "DAGSTER_PG_PASSWORD"
LOCATION_UNIT = "dagster-code-location@example.service"
SCENARIO = scenario_config(Path(__file__).parents[1])
GROUP_VARS = SCENARIO["provisioner"]["inventory"]["group_vars"]["all"]
# The Debian release of the instance host: the run image's base too.
BASE = GROUP_VARS["dagster_code_locations"][0]["image_build"]["base"]
RUN_FILES = GROUP_VARS["dagster_docker_run_files_dir"]
CA_FILE = "/etc/dagster/postgresql-ca.crt"
PGPASS_IN_CONTAINER = "/run/dagster/pgpass"
# The install environment the scenario gives the image build (a secret-looking value).
INSTALL_SECRETS = list(GROUP_VARS["dagster_code_location_install_environment"].values())


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
            # The storage reads the variable, empty in the container: libpq reads PGPASSFILE.
            "env_vars": [f"{PASSWORD_ENV}=", f"PGPASSFILE={PGPASS_IN_CONTAINER}"],
            "container_kwargs": {
                "mem_limit": "1g",
                "labels": {"dagsterops.scenario": "docker"},
                "volumes": [
                    f"{RUN_FILES}/pgpass:{PGPASS_IN_CONTAINER}:ro",
                    f"{RUN_FILES}/postgresql-ca.crt:{CA_FILE}:ro",
                ],
            },
        },
    }
    params = yaml.safe_load(text)["storage"]["postgres"]["postgres_db"]["params"]
    assert params == {"sslmode": "verify-full", "sslrootcert": CA_FILE, "channel_binding": "require"}


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


def test_docker_inspect_of_the_run_container_shows_no_secret(docker_run, password):
    container = docker_run[1]
    text = docker("container", "inspect", container["Id"])
    for secret in [password, *INSTALL_SECRETS]:
        assert secret not in text, f"{secret[:6]}... in docker inspect of the run container"
    env = [e for e in container["Config"]["Env"] if e.startswith((f"{PASSWORD_ENV}=", "PGPASSFILE="))]
    assert sorted(env) == [f"{PASSWORD_ENV}=", f"PGPASSFILE={PGPASS_IN_CONTAINER}"]


def test_the_run_container_mounts_the_pgpass_file_and_the_ca_read_only(docker_run):
    mounts = {m["Destination"]: m for m in docker_run[1]["Mounts"]}
    assert sorted(mounts) == sorted([PGPASS_IN_CONTAINER, CA_FILE]), mounts
    assert mounts[PGPASS_IN_CONTAINER]["Source"] == f"{RUN_FILES}/pgpass"
    assert mounts[CA_FILE]["Source"] == f"{RUN_FILES}/postgresql-ca.crt"
    assert not any(m["RW"] for m in mounts.values()), mounts


def test_on_the_host_the_pgpass_file_is_the_containers_uid_alone(host):
    directory, pgpass = host.file(RUN_FILES), host.file(f"{RUN_FILES}/pgpass")
    assert (directory.user, directory.group, directory.mode) == ("root", "root", 0o700)
    assert (pgpass.uid, pgpass.mode) == (65534, 0o400)
    assert host.file(f"{RUN_FILES}/postgresql-ca.crt").content_string == host.file(CA_FILE).content_string


def test_a_container_of_the_run_setup_reads_the_pgpass_file_and_verifies_the_server(docker_run):
    """The run container's own image, network, environment and mounts, with a probe for a command:
    libpq with no password but the file, verify-full against the mounted CA, channel binding."""
    container = docker_run[1]
    probe = (
        "import psycopg2; c = psycopg2.connect(host='dagster-docker', dbname='dagster', user='dagster', "
        f"sslmode='verify-full', sslrootcert='{CA_FILE}', channel_binding='require'); cur = c.cursor(); "
        "cur.execute('SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()'); print(cur.fetchone())"
    )
    args = ["run", "--rm", "--label", "dagsterops.scenario=docker", "--network", "dagster-docker"]
    for bind in container["HostConfig"]["Binds"]:
        args += ["--volume", bind]
    for env in container["Config"]["Env"]:
        args += ["--env", env]
    output = docker(*args, container["Config"]["Image"], "python", "-c", probe).strip()
    print(f"a run container's connection: {output}")
    assert output.startswith("(True, 'TLSv1."), output


# --- the run image's history ----------------------------------------------------------------------


def test_docker_history_of_the_run_image_shows_no_secret(host, password):
    image = advertised_image(host)
    history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", image)
    config = docker("image", "inspect", image)
    for secret in [password, *INSTALL_SECRETS]:
        assert secret not in history, f"{secret[:6]}... in docker history of {image}"
        assert secret not in config, f"{secret[:6]}... in docker image inspect of {image}"
    # The install steps read the environment from the build secret's mount.
    assert "/run/secrets/install-environment" in history


def test_the_build_secret_is_removed_after_the_build(host):
    directory = host.file("/opt/dagster/build-secrets")
    assert (directory.user, directory.group, directory.mode) == ("root", "root", 0o700)
    assert host.check_output("ls -A /opt/dagster/build-secrets") == ""


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
        locations = scenario_config(Path(__file__).parents[1])
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
