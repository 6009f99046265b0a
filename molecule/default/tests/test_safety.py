"""What job code can reach, and what a converge does to the runs in progress.

Job code runs as `dagster`. DAGSTER_HOME belongs to root; Dagster writes only in
its storage directory. A converge that changes dagster.yaml and the service
environment restarts the webserver and the daemon, and a run in progress lives
through it in the same worker process.
"""

import pytest
from dagster_checks import (
    PROJECT,
    ansible_playbook,
    frozen_packages,
    journal,
    launch_run,
    locked_pins,
    pause_config,
    pause_job_worker_pids,
    psql,
    python_version,
    run_status,
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


@pytest.fixture(scope="module")
def converged_with_changes(host):
    """A converge that changes dagster.yaml and the service environment, with a run in flight.

    Before it, job code plants symbolic links to /etc/shadow and to a root-owned
    sentinel under every name in the directory it can write. Yields (run id,
    final status, statuses seen, which units restarted while the run was in
    progress, sentinels before, sentinels after).
    """
    if host.backend.host != "dagster-aio-debian12":
        pytest.skip("one host is enough: the converge takes minutes")
    sentinel = "/root/dagster-sentinel"
    host.check_output(f"echo root-only > {sentinel} && chmod 0600 {sentinel}")
    watched = ["/etc/shadow", sentinel]
    before = {path: _fingerprint(host, path) for path in watched}
    names = ["dagster.yaml", "workspace.yaml", ".dagsterops-plant", "upgrades.log", "storage", "planted"]
    for index, name in enumerate(names):
        target = watched[index % 2]
        planted = as_dagster(host, f"ln -s {target} {STORAGE}/{name}")
        assert planted.rc == 0, planted.stderr

    # Longer than the converge: the restarts happen while it runs.
    run_id = launch_run(host, "example", "pause_job", run_config=pause_config(180))
    wait_until_started(host, run_id)
    pids = {
        unit: host.check_output(f"systemctl show -p MainPID --value {unit}")
        for unit in ("dagster-webserver", "dagster-daemon")
    }
    rc, output, seconds = ansible_playbook(
        PROJECT / "playbooks/site.yml",
        {"dagster_max_concurrent_runs": 9, "dagster_environment": {"DAGSTEROPS_TEST_CHANGE": "1"}},
        "--limit", host.backend.host,
    )
    print(f"converge with a run in flight: {seconds:.0f} s")
    assert rc == 0, output[-3000:]
    restarted = {
        unit: host.check_output(f"systemctl show -p MainPID --value {unit}") != pid for unit, pid in pids.items()
    }
    still_running = run_status(host, run_id)["status"] == "STARTED"
    status, waited, seen = wait_for_run(host, run_id, timeout=240)
    after = {path: _fingerprint(host, path) for path in watched}
    yield run_id, status, seen, {unit: done and still_running for unit, done in restarted.items()}, before, after
    # Back to the scenario's configuration.
    rc, output, _ = ansible_playbook(PROJECT / "playbooks/site.yml", None, "--limit", host.backend.host)
    assert rc == 0, output[-3000:]
    as_dagster(host, " ".join(f"rm -f {STORAGE}/{name};" for name in names))
    host.run(f"rm -f {sentinel}")


def test_the_converge_restarted_the_webserver_and_the_daemon_under_the_run(converged_with_changes):
    _, _, _, restarted_under_the_run, _, _ = converged_with_changes
    assert restarted_under_the_run == {"dagster-webserver": True, "dagster-daemon": True}


def test_a_run_in_flight_finishes_in_the_same_worker(host, converged_with_changes):
    run_id, status, seen, _, _, _ = converged_with_changes
    assert status == "SUCCESS", (seen, journal(host, "dagster-daemon"))
    logged = pause_job_worker_pids(host, run_id)
    assert len(logged["started"]) == 1 and logged["finished"] == logged["started"], logged


def test_planted_links_changed_nothing_of_root(converged_with_changes):
    _, _, _, _, before, after = converged_with_changes
    assert after == before


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


# --- reproducible environments ---------------------------------------------------------------------

LOCK = PROJECT / "roles/dagster/files/locks/dagster-1.13.27-default.txt"


def test_the_environment_is_exactly_the_lock(host):
    python = "/opt/dagster/current/bin/python"
    installed = frozen_packages(host, python)
    expected = locked_pins(LOCK, python_version(host, python))
    assert installed == expected, installed ^ expected


def test_a_tampered_lock_stops_the_install_before_the_switch(host, tmp_path):
    if host.backend.host != "dagster-aio-debian12":
        pytest.skip("one host is enough: the converge takes minutes")
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
