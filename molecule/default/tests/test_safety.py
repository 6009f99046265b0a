"""What job code can reach, and what a converge does to the runs in progress.

Job code runs as `dagster`. DAGSTER_HOME belongs to root; Dagster writes only in
its storage directory. A converge that changes dagster.yaml and the service
environment restarts the webserver and the daemon, and a run in progress lives
through it in the same worker process.
"""

import time

import pytest
from dagster_checks import (
    PROJECT,
    ansible_playbook,
    frozen_packages,
    journal,
    last_oneshot_run,
    launch_run,
    locked_pins,
    pause_job_worker_pids,
    psql,
    python_version,
    run_messages,
    run_status,
    start_held_run,
    wait_for,
    wait_for_run,
    wait_until_started,
)

HOME = "/var/lib/dagster"
STORAGE = f"{HOME}/storage"


def as_dagster(host, command):
    return host.run(f"runuser -u dagster -- sh -c '{command}'")


def test_dagster_home_belongs_to_root_and_storage_to_dagster(host):
    home = host.file(HOME)
    assert (home.user, home.group, home.mode) == ("root", "dagster", 0o750)
    storage = host.file(STORAGE)
    assert (storage.user, storage.group, storage.mode) == ("dagster", "dagster", 0o750)


def test_job_code_can_write_only_in_its_own_directories(host):
    # Every directory of the collection's paths that the dagster user can write.
    found = as_dagster(host, f"find {HOME} /etc/dagster /opt/dagster -type d -writable -prune")
    assert found.rc == 0, found.stderr
    assert found.stdout.split() == [STORAGE]
    refused = as_dagster(host, f"touch {HOME}/planted")
    assert refused.rc != 0 and "Permission denied" in refused.stderr


def test_services_write_only_in_storage(host):
    for unit in ("dagster-webserver", "dagster-daemon"):
        paths = host.check_output(f"systemctl show -p ReadWritePaths --value {unit}")
        assert paths.split() == [STORAGE], (unit, paths)


def _fingerprint(host, path):
    return host.check_output(f"stat -c '%U:%G %a' {path}"), host.check_output(f"sha256sum {path}").split()[0]


# A run in flight on each location type of the scenario (molecule.yml): it waits for its release file,
# for an hour at most (three converges took over 20 minutes on a test machine under heavy load).
IN_FLIGHT = {"module": "example", "file": "example_file"}
UNITS = ("dagster-webserver", "dagster-daemon")
# A location added by the second converge: the example's file location under another name.
ADDED_LOCATION = {"name": "example_file_added", "type": "file", "working_directory": "/opt/dagster/examples",
                  "file": "/opt/dagster/examples/dagster_example/file_location.py"}
SCENARIO_LOCATIONS = [{**ADDED_LOCATION, "name": "example_file"}]
# The converges the runs live through, each named by the kinds of change it makes; the last one
# brings the scenario's own configuration back (and so changes every kind once more).
CONVERGES = {
    "dagster.yaml and the service environment": {
        "dagster_max_concurrent_runs": 9, "dagster_environment": {"DAGSTEROPS_TEST_CHANGE": "1"}},
    "workspace.yaml and a unit option": {
        "dagster_code_locations": SCENARIO_LOCATIONS + [ADDED_LOCATION], "dagster_service_tasks_max": 2048},
    "every kind back to the scenario's configuration": None,
}


def _pids(host):
    return {unit: host.check_output(f"systemctl show -p MainPID --value {unit}") for unit in UNITS}


def _what_a_converge_changed(host):
    """The value each kind of change sets, as the host has it now."""
    import yaml

    instance = yaml.safe_load(host.file(f"{HOME}/dagster.yaml").content_string)
    workspace = yaml.safe_load(host.file(f"{HOME}/workspace.yaml").content_string)
    daemon = host.check_output("systemctl show -p MainPID --value dagster-daemon")
    environ = host.check_output(f"tr '\\0' '\\n' < /proc/{daemon}/environ")
    return {
        "dagster.yaml": instance["run_coordinator"]["config"]["max_concurrent_runs"],
        "service environment": "DAGSTEROPS_TEST_CHANGE=1" in environ.splitlines(),
        "workspace.yaml": sorted(next(iter(entry.values()))["location_name"] for entry in workspace["load_from"]),
        "unit option": host.check_output("systemctl show -p TasksMax --value dagster-daemon"),
    }


@pytest.fixture(scope="module")
def converged_with_changes(host):
    """Three converges, one after the other, with a run in flight on the module and the file location.

    Before them, job code plants symbolic links to /etc/shadow and to a root-owned
    sentinel under every name in the directory it can write. The runs wait for
    their release files, created once the last converge is done. Yields a map
    with, per converge, what it changed, whether it restarted the units and the
    runs' states after it; per location type, the run's id, final status and
    statuses seen; and the sentinels' fingerprints before and after.
    """
    sentinel = "/root/dagster-sentinel"
    host.check_output(f"echo root-only > {sentinel} && chmod 0600 {sentinel}")
    watched = ["/etc/shadow", sentinel]
    before = {path: _fingerprint(host, path) for path in watched}
    names = ["dagster.yaml", "workspace.yaml", ".dagsterops-plant", "upgrades.log", "storage", "planted"]
    for index, name in enumerate(names):
        target = watched[index % 2]
        planted = as_dagster(host, f"ln -s {target} {STORAGE}/{name}")
        assert planted.rc == 0, planted.stderr

    releases = {kind: f"{STORAGE}/release-{kind}" for kind in IN_FLIGHT}
    as_dagster(host, " ".join(f"rm -f {path};" for path in releases.values()))
    runs = {
        kind: launch_run(host, location, "pause_job",
                         run_config={"ops": {"pause": {"config": {"seconds": 3600, "release_file": releases[kind]}}}})
        for kind, location in IN_FLIGHT.items()
    }
    for run_id in runs.values():
        wait_until_started(host, run_id)
    workers = {
        kind: wait_for(lambda r=run_id: pause_job_worker_pids(host, r)["started"], 60, message=f"{kind} run's worker")[0]
        for kind, run_id in runs.items()
    }
    converges = {}
    for name, extra_vars in CONVERGES.items():
        pids = _pids(host)
        rc, output, seconds = ansible_playbook(PROJECT / "playbooks/site.yml", extra_vars, "--limit", host.backend.host)
        print(f"converge changing {name}, with runs in flight: {seconds:.0f} s")
        assert rc == 0, output[-3000:]
        converges[name] = {
            "restarted": {unit: pid != pids[unit] for unit, pid in _pids(host).items()},
            "runs": {kind: run_status(host, run_id)["status"] for kind, run_id in runs.items()},
            "workers alive": {kind: host.run(f"kill -0 {pid}").rc == 0 for kind, pid in workers.items()},
            "changed": _what_a_converge_changed(host),
        }
    as_dagster(host, " ".join(f"touch {path};" for path in releases.values()))
    ended = {kind: (run_id,) + wait_for_run(host, run_id, timeout=120)[::2] for kind, run_id in runs.items()}
    after = {path: _fingerprint(host, path) for path in watched}
    yield {"converges": converges, "runs": ended, "before": before, "after": after}
    as_dagster(host, " ".join(f"rm -f {STORAGE}/{name};" for name in names + [p.split("/")[-1] for p in releases.values()]))
    host.run(f"rm -f {sentinel}")


@pytest.mark.parametrize("converge", list(CONVERGES))
def test_each_converge_restarted_the_webserver_and_the_daemon_under_the_runs(converged_with_changes, converge):
    seen = converged_with_changes["converges"][converge]
    assert seen["restarted"] == {"dagster-webserver": True, "dagster-daemon": True}, seen
    assert seen["runs"] == {kind: "STARTED" for kind in IN_FLIGHT}, seen
    assert seen["workers alive"] == {kind: True for kind in IN_FLIGHT}, seen


def test_each_converge_made_the_changes_it_is_named_for(converged_with_changes):
    changed = {name: seen["changed"] for name, seen in converged_with_changes["converges"].items()}
    scenario = {"dagster.yaml": 10, "service environment": False,
                "workspace.yaml": ["example", "example_file"], "unit option": "4096"}
    first, second, last = changed.values()
    assert first == {**scenario, "dagster.yaml": 9, "service environment": True}, first
    assert second == {**scenario, "workspace.yaml": ["example", "example_file", "example_file_added"],
                      "unit option": "2048"}, second
    assert last == scenario, last


@pytest.mark.parametrize("kind", list(IN_FLIGHT))
def test_a_run_in_flight_finishes_in_the_same_worker(host, converged_with_changes, kind):
    run_id, status, seen = converged_with_changes["runs"][kind]
    assert status == "SUCCESS", (seen, journal(host, "dagster-daemon"))
    logged = pause_job_worker_pids(host, run_id)
    assert len(logged["started"]) == 1 and logged["finished"] == logged["started"], logged


def test_planted_links_changed_nothing_of_root(converged_with_changes):
    assert converged_with_changes["after"] == converged_with_changes["before"]


def _main_pids(host):
    units = ["dagster-webserver", "dagster-daemon"] + host.check_output(
        "systemctl list-units --plain --no-legend 'postgresql@*' | cut -d' ' -f1").split()
    return {unit: host.check_output(f"systemctl show -p MainPID --value {unit}") for unit in units}


def test_a_runaway_run_fails_and_the_services_stay_up(host):
    # The scenario's limit (molecule.yml), well below the host's memory.
    for unit in ("dagster-webserver", "dagster-daemon"):
        assert host.check_output(f"systemctl show -p MemoryMax --value {unit}") == str(1536 << 20)
    before = _main_pids(host)
    assert len(before) == 3 and "0" not in before.values(), before
    run_id = launch_run(host, "example", "runaway_job")
    status, waited, seen = wait_for_run(host, run_id, timeout=180)
    print(f"runaway_job: {status} after {waited:.0f} s")
    assert status == "FAILURE", seen
    assert _main_pids(host) == before, journal(host, "dagster-daemon")
    ended = psql(host, f"SELECT event FROM event_logs WHERE run_id='{run_id}' AND event LIKE '%was terminated by signal 9 (SIGKILL)%'")
    assert ended, "the run did not end with its process killed by the kernel"


# A run in flight on the module location, whose worker dies with the daemon's whole unit, and a
# control run started after it, whose worker lives.
LOST_RUN_PERIOD = 45  # dagster_run_monitoring_poll_interval, molecule.yml
SWEEP_SECONDS = 20
LOST_RUNS = "dagster-fail-lost-runs.service"


def test_a_run_whose_worker_died_with_the_daemon_is_failed_within_the_poll_interval(host):
    releases = {name: f"{STORAGE}/release-{name}" for name in ("lost", "control")}
    as_dagster(host, " ".join(f"rm -f {path};" for path in releases.values()))
    lost, lost_worker = start_held_run(host, "example", releases["lost"])
    # Every process of the unit: the daemon, its code servers and the run's worker.
    host.check_output("systemctl kill --signal=SIGKILL dagster-daemon.service")
    killed_at = time.monotonic()
    wait_for(lambda: host.run(f"kill -0 {lost_worker}").rc != 0, 10, step=0.2, message="the worker outlived the kill")
    wait_for(lambda: host.service("dagster-daemon").is_running, 60, step=0.5, message=lambda: journal(host, "dagster-daemon"))
    control, control_worker = start_held_run(host, "example", releases["control"])
    before_control = last_oneshot_run(host, LOST_RUNS)[0]
    try:
        status = wait_for(lambda: (s := run_status(host, lost)["status"]) != "STARTED" and s,
                          LOST_RUN_PERIOD + SWEEP_SECONDS,
                          message=lambda: journal(host, "dagster-fail-lost-runs.service"))
        seconds = time.monotonic() - killed_at
        print(f"run whose worker died: {status} {seconds:.0f} s after the kill (period {LOST_RUN_PERIOD} s)")
        assert status == "FAILURE", journal(host, "dagster-fail-lost-runs.service")
        # One period, and the check's own run (a Python process that imports Dagster).
        assert seconds <= LOST_RUN_PERIOD + SWEEP_SECONDS, journal(host, "dagster-fail-lost-runs.service")
        assert any(f"worker process (pid {lost_worker})" in message for message in run_messages(host, lost))
        # The live worker's run is left alone by a check that started once it was STARTED.
        wait_for(lambda: (sweep := last_oneshot_run(host, LOST_RUNS))[0] > before_control and sweep[1] > sweep[0],
                 LOST_RUN_PERIOD + SWEEP_SECONDS, message=lambda: journal(host, "dagster-fail-lost-runs.service"))
        assert run_status(host, control)["status"] == "STARTED"
        assert host.run(f"kill -0 {control_worker}").rc == 0
    finally:
        as_dagster(host, " ".join(f"touch {path};" for path in releases.values()))
    assert wait_for_run(host, control, timeout=120)[0] == "SUCCESS"
    as_dagster(host, " ".join(f"rm -f {path};" for path in releases.values()))


# --- reproducible environments ---------------------------------------------------------------------

LOCK = PROJECT / "roles/dagster/files/locks/dagster-1.13.27-default.txt"


def test_the_environment_is_exactly_the_lock(host):
    python = "/opt/dagster/current/bin/python"
    installed = frozen_packages(host, python)
    expected = locked_pins(LOCK, python_version(host, python))
    assert installed == expected, installed ^ expected


def test_a_tampered_lock_stops_the_install_before_the_switch(host, tmp_path):
    lines = LOCK.read_text().splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if line.startswith("dagster==")) + 1
    digest = lines[index].split("sha256:")[1].strip(" \\\n")
    lines[index] = lines[index].replace(digest, digest[::-1])
    tampered = tmp_path / "tampered.txt"
    tampered.write_text("".join(lines))
    current = host.check_output("readlink /opt/dagster/current")
    pids = {unit: host.check_output(f"systemctl show -p MainPID --value {unit}")
            for unit in ("dagster-webserver", "dagster-daemon")}
    rc, output, _ = ansible_playbook(PROJECT / "playbooks/site.yml", {"dagster_requirements_lock": str(tampered)},
                                     "--limit", host.backend.host)
    assert rc != 0, output[-3000:]
    assert "hash" in output.lower(), output[-3000:]
    assert host.check_output("readlink /opt/dagster/current") == current
    assert {unit: host.check_output(f"systemctl show -p MainPID --value {unit}") for unit in pids} == pids


# --- check mode --------------------------------------------------------------------------------------


def _task_outputs(output, name):
    """The lines Ansible printed for each task whose name ends with NAME."""
    return [chunk for chunk in output.split("TASK [")[1:] if chunk.split("]", 1)[0].endswith(name)]


def test_check_mode_reports_a_timer_it_would_add_and_writes_nothing(host):
    timer = "/etc/systemd/system/dagster-backup.timer"
    assert not host.file(timer).exists
    rc, output, _ = ansible_playbook(PROJECT / "playbooks/site.yml", {"dagster_backup_schedule": "daily"},
                                     "--check", "--limit", host.backend.host)
    assert rc == 0, output[-3000:]
    (written,) = _task_outputs(output, "Write the units of dagster-backup")
    assert "\nchanged: " in written, written
    (enabled,) = _task_outputs(output, "Enable and start the timer dagster-backup")
    assert "\nskipping: " in enabled, enabled
    assert not host.file(timer).exists
