"""The all-in-one deployment as a user checks it by hand."""

import json

import pytest
from dagster_checks import (
    graphql,
    instance_config,
    journal,
    launch_run,
    locations,
    pause_config,
    psql,
    wait_for,
    wait_for_run,
)

UNITS = ["postgresql.service", "dagster-webserver.service", "dagster-daemon.service"]


@pytest.mark.parametrize("unit", UNITS)
def test_unit_active_and_enabled(host, unit):
    service = host.service(unit)
    assert service.is_running, journal(host, unit)
    assert service.is_enabled


def test_webserver_listens_on_loopback_only(host):
    listening = [s for s in host.socket.get_listening_sockets() if s.endswith(":3000")]
    assert listening == ["tcp://127.0.0.1:3000"], listening


def test_postgresql_has_no_tcp_listener(host):
    assert not [s for s in host.socket.get_listening_sockets() if s.endswith(":5432")]


def test_server_info_reports_pinned_version(host):
    out = host.check_output("python3 -c \"import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:3000/server_info').read().decode())\"")
    info = json.loads(out)
    assert info["dagster_version"] == "1.13.27", info


def test_files_and_modes(host):
    home = host.file("/var/lib/dagster")
    assert home.is_directory and home.mode == 0o750 and home.user == "root" and home.group == "dagster"
    for name in ("dagster.yaml", "workspace.yaml"):
        f = host.file(f"/var/lib/dagster/{name}")
        assert f.mode == 0o640 and f.user == "root" and f.group == "dagster", name
    env = host.file("/etc/dagster/dagster.env")
    assert env.mode == 0o640 and env.group == "dagster"


def test_instance_config(host):
    config = instance_config(host)
    assert config["storage"]["postgres"]["postgres_url"] == "postgresql+psycopg2://dagster@/dagster?host=/run/postgresql"
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["run_coordinator"]["config"]["max_concurrent_runs"] == 10
    assert config["telemetry"] == {"enabled": False}


def test_database_owned_by_dagster_role(host):
    out = host.check_output(
        "sudo -u postgres psql -tAc \"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname='dagster'\""
    )
    assert out.strip() == "dagster"
    superuser = host.check_output("sudo -u postgres psql -tAc \"SELECT rolsuper FROM pg_roles WHERE rolname='dagster'\"")
    assert superuser.strip() == "f"


def test_example_location_loaded(host):
    entries = locations(host)
    assert "example" in entries, entries
    location = entries["example"]["locationOrLoadError"]
    assert location["__typename"] == "RepositoryLocation", location
    jobs = {job["name"] for repo in location["repositories"] for job in repo["jobs"]}
    assert "example_job" in jobs
    assets = {"/".join(node["assetKey"]["path"]) for repo in location["repositories"] for node in repo["assetNodes"]}
    assert {"numbers", "total", "run_host"} <= assets


def test_queued_run_succeeds_and_is_stored(host):
    run_id = launch_run(host, "example", "example_job")
    status, seconds, seen = wait_for_run(host, run_id)
    assert status == "SUCCESS", f"{seen}\n{journal(host, 'dagster-daemon')}"
    # The queued coordinator put it in the queue before the daemon launched it.
    assert seen[0] in ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "SUCCESS")
    stored = host.check_output(
        f"sudo -u postgres psql -d dagster -tAc \"SELECT status FROM runs WHERE run_id='{run_id}'\""
    )
    assert stored.strip() == "SUCCESS"
    queued_events = host.check_output(
        "sudo -u postgres psql -d dagster -tAc "
        f"\"SELECT count(*) FROM event_logs WHERE run_id='{run_id}' AND dagster_event_type='PIPELINE_ENQUEUED'\""
    )
    assert int(queued_events.strip()) == 1
    print(f"run {run_id}: {' -> '.join(seen)} in {seconds:.1f} s")


# dagster_tag_concurrency_limits in molecule.yml: at most one run at a time per value of this tag.
SERIAL_TAG = "dagsterops/serial"


def _start_and_end(host, run_id):
    """When the run's worker started and when the run ended (seconds since the epoch), from PostgreSQL."""
    start, end = psql(host, f"SELECT start_time, end_time FROM runs WHERE run_id='{run_id}'").split("|")
    return float(start), float(end)


def test_a_tag_concurrency_limit_holds_a_run_until_the_last_one_with_its_tag_ends(host):
    """Two runs with the same value of the limited tag run one after the other; a run
    without the tag, launched with them, starts beside the first (the coordinator allows
    several runs at once)."""
    limits = instance_config(host)["run_coordinator"]["config"]
    assert limits["tag_concurrency_limits"] == [{"key": SERIAL_TAG, "limit": 1}], limits
    assert limits["max_concurrent_runs"] >= 3, limits
    first = launch_run(host, "example", "pause_job", tags={SERIAL_TAG: "a"}, run_config=pause_config(20))
    second = launch_run(host, "example", "pause_job", tags={SERIAL_TAG: "a"}, run_config=pause_config(1))
    untagged = launch_run(host, "example", "pause_job", run_config=pause_config(1))
    for run_id in (first, second, untagged):
        status, _, seen = wait_for_run(host, run_id, timeout=300)
        assert status == "SUCCESS", (run_id, seen, journal(host, "dagster-daemon"))
    (first_start, first_end), (second_start, _), (untagged_start, _) = (
        _start_and_end(host, run_id) for run_id in (first, second, untagged))
    print(f"tag limit: first run {first_start:.1f}-{first_end:.1f}, second started {second_start:.1f}, "
          f"the untagged one {untagged_start:.1f}")
    assert second_start >= first_end, "the second run with the limited tag started before the first ended"
    assert untagged_start < first_end, "the run without the tag waited for the tagged one"


@pytest.mark.parametrize("unit", ["dagster-webserver.service", "dagster-daemon.service", "dagster-purge-runs.service",
                                  "dagster-fail-lost-runs.service"])
def test_unit_exposure_is_low(host, unit):
    out = host.check_output(f"systemd-analyze security {unit} | tail -n 1")
    exposure = float(out.split(":")[1].split()[0])
    print(f"{host.backend.hostname} {unit}: exposure {exposure}")
    assert exposure <= 2.5, host.check_output(f"systemd-analyze security {unit}")


HEARTBEAT_TOLERANCE = 120


def test_daemon_heartbeat_is_fresh(host):
    # As the daemon runs: its user, home and environment file (whose values would show in ps on a
    # command line). Every daemon thread writes a heartbeat each 30 s; the check's own tolerance is
    # 1800 s, so it is told HEARTBEAT_TOLERANCE: four intervals.
    result = host.run(
        "systemd-run --quiet --collect --wait --pipe -p User=dagster -p WorkingDirectory=/var/lib/dagster "
        f"-p EnvironmentFile=/etc/dagster/dagster.env -p Environment=DAGSTER_DAEMON_HEARTBEAT_TOLERANCE={HEARTBEAT_TOLERANCE} "
        "/opt/dagster/current/bin/dagster-daemon liveness-check"
    )
    assert result.rc == 0, result.stdout + result.stderr + journal(host, "dagster-daemon.service")


def test_runs_execute_under_the_daemon_sandbox(host):
    # The example's code server is a child of the daemon: it inherits the unit's sandbox.
    pids = host.check_output("systemctl show -p MainPID --value dagster-daemon.service").strip()
    status = host.file(f"/proc/{pids}/status").content_string
    assert "NoNewPrivs:\t1" in status
    assert "CapEff:\t0000000000000000" in status


# --- tick retention ---------------------------------------------------------------------------------

IDLE_SENSOR = {"repositoryLocationName": "example", "repositoryName": "__repository__", "sensorName": "idle_sensor"}
START_SENSOR = """
mutation Start($selector: SensorSelector!) {
  startSensor(sensorSelector: $selector) { __typename ... on PythonError { message } }
}
"""
RESET_SENSOR = """
mutation Reset($selector: SensorSelector!) {
  resetSensor(sensorSelector: $selector) { __typename ... on PythonError { message } }
}
"""
RETENTION_DAYS = 7  # dagster_retention_days: the role's default
SENSOR_INTERVAL = 30  # idle_sensor's minimum_interval_seconds


def _idle_sensor_ticks(host):
    """{id: status} of idle_sensor's ticks."""
    rows = psql(host, "SELECT id, status FROM job_ticks WHERE type = 'SENSOR' AND tick_body LIKE '%idle_sensor%'")
    return dict(line.split("|") for line in rows.splitlines() if line)


def _copy_tick(host, tick_id, days_older):
    """A copy of the tick, dated DAYS_OLDER days before it; its id."""
    out = psql(host, "INSERT INTO job_ticks (job_origin_id, selector_id, status, type, timestamp, tick_body) "
                     f"SELECT job_origin_id, selector_id, status, type, timestamp - interval '{days_older} days', "
                     f"tick_body FROM job_ticks WHERE id = {tick_id} RETURNING id")
    return out.splitlines()[0]


def test_tick_retention_purges_the_ticks_older_than_its_days(host):
    started = graphql(host, START_SENSOR, {"selector": IDLE_SENSOR})["startSensor"]
    assert started["__typename"] == "Sensor", started
    try:
        ticks = wait_for(lambda: [i for i, status in _idle_sensor_ticks(host).items() if status != "STARTED"],
                         SENSOR_INTERVAL + 60, message=lambda: journal(host, "dagster-daemon"))
        old = _copy_tick(host, ticks[0], RETENTION_DAYS + 3)
        recent = _copy_tick(host, ticks[0], RETENTION_DAYS - 3)
        # Dagster purges a sensor's old ticks at the end of each of its ticks: one that began after the copies.
        wait_for(lambda: [i for i, status in _idle_sensor_ticks(host).items() if int(i) > int(recent) and status != "STARTED"],
                 SENSOR_INTERVAL + 60, message=lambda: journal(host, "dagster-daemon"))
        left = _idle_sensor_ticks(host)
        assert old not in left, f"a tick {RETENTION_DAYS + 3} days old outlived a retention of {RETENTION_DAYS} days"
        assert recent in left, f"a tick {RETENTION_DAYS - 3} days old was purged"
    finally:
        reset = graphql(host, RESET_SENSOR, {"selector": IDLE_SENSOR})["resetSensor"]
    assert reset["__typename"] == "Sensor", reset
