"""Faults on a converged all-in-one host: bad inputs refused before any change,
killed processes, the database away (two minutes in the soak) and at start, a stopped
daemon under queued runs, a crash loop and a restart of the whole machine. Tests run in file order and
each leaves the deployment healthy for the next."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from dagster_checks import (
    DAEMON_HEALTH,
    GRPC_HEALTH,
    PROJECT,
    ansible_playbook,
    graphql,
    journal,
    launch_run,
    locations,
    pause_job_worker_pids,
    psql,
    run_status,
    wait_for,
    wait_for_run,
)
from dagsterops_pytest import SOAK

HOST = "dagster-faults"
SCENARIO = Path(__file__).resolve().parents[1]
CATALOGUE = yaml.safe_load((SCENARIO / "bad_inputs.yml").read_text())
LOCATION = "served"
UNITS = ["dagster-webserver.service", "dagster-daemon.service", f"dagster-code-location@{LOCATION}.service"]
# The target is 15 s from kill -9 to active and answering; benchmarks/bench.py
# --only recovery measures it on a quiet machine, and scripts/test.sh soak holds
# each unit to it. In CI other scenarios share the two cores: the check allows
# twice the target there, and a figure above the target is printed as a miss.
RECOVERY_TARGET = 15
RECOVERY_LIMIT = RECOVERY_TARGET if SOAK else 2 * RECOVERY_TARGET

# What a converge may change: configuration, units, the instance's files, the
# environments and code under /opt/dagster (every file by content), and the database's
# settings and roles. The PostgreSQL queries run as the postgres superuser.
SNAPSHOT_PATHS = (
    "/etc/dagster /etc/dagster-postgresql /etc/postgresql /etc/systemd/system /opt/dagster "
    "/var/lib/dagster/dagster.yaml /var/lib/dagster/workspace.yaml /var/lib/postgresql/*/main/postgresql.auto.conf"
)
PG_SETTINGS = "SELECT name, setting FROM pg_settings ORDER BY name"
# Digested: the rows hold the password hashes, which a failed comparison would print.
PG_AUTHID = "SELECT * FROM pg_authid ORDER BY oid"
# The service whose process is PostgreSQL itself (postgresql.service only starts it).
POSTGRESQL_UNIT = "postgresql@*-main.service"
# What the environment files carry (molecule.yml): quotes, backslashes, '$', a backtick, a tab,
# a line break and non-ASCII letters, which the services must see unchanged.
QUOTING_PROBE = "pä$$wörd\"'\\ `id` \\n tab\t end\nsecond line"
# The play a stop must come in: site.yml's first, which only reads. Its second play is the first
# that can change a host (it starts building the environment).
CHECK_PLAY = "Check the deployment as a whole before any host changes"
FIRST_CHANGING_PLAY = "Start building the Dagster environments"


def main_pid(host, unit):
    return int(host.check_output(f"systemctl show -p MainPID --value {unit}"))


def answering(host, unit):
    """The unit does its job: the webserver serves, the code server answers its health check."""
    if unit == "dagster-webserver.service":
        return host.run("python3 -c \"import urllib.request;urllib.request.urlopen('http://127.0.0.1:3000/server_info', timeout=2)\"").rc == 0
    if unit.startswith("dagster-code-location@"):
        return host.run(f"/opt/dagster/code-locations/{LOCATION}/venv/bin/python -c \"{GRPC_HEALTH}\" 4000").rc == 0
    return True


def location_loaded(host):
    """The instance has the code location loaded: its runs can be launched."""
    try:
        entry = locations(host).get(LOCATION, {}).get("locationOrLoadError") or {}
    except AssertionError:  # the webserver does not answer (yet)
        return False
    return entry.get("__typename") == "RepositoryLocation"


def daemon_heartbeats_since(host, since):
    try:
        statuses = graphql(host, DAEMON_HEALTH)["instance"]["daemonHealth"]["allDaemonStatuses"]
    except AssertionError:
        return False
    required = [s for s in statuses if s["required"]]
    return bool(required) and all(s["healthy"] and (s["lastHeartbeatTime"] or 0) > since for s in required)


def run_succeeds(host, location=LOCATION):
    run_id = launch_run(host, location, "example_job")
    status, seconds, seen = wait_for_run(host, run_id)
    assert status == "SUCCESS", f"{seen}\n{journal(host, 'dagster-daemon')}"
    return seconds


# --- what listens -------------------------------------------------------------------------------


def test_only_the_configured_sockets_listen_on_loopback(host):
    # The webserver and the code server on loopback, as configured; PostgreSQL on its Unix socket only.
    tcp = sorted(line.split()[3] for line in host.check_output("ss -Hltn").splitlines())
    udp = sorted(line.split()[3] for line in host.check_output("ss -Hlun").splitlines())
    assert tcp == ["127.0.0.1:3000", "127.0.0.1:4000"], tcp
    assert udp == [], udp


# --- bad inputs ------------------------------------------------------------------------------------


# The catalogue's converges share the host's facts: the first case gathers them into this cache,
# the others read them (gathering "smart"), as the host does not change between them.
FACT_CACHE = {"ANSIBLE_GATHERING": "smart", "ANSIBLE_CACHE_PLUGIN": "jsonfile",
              "ANSIBLE_CACHE_PLUGIN_TIMEOUT": "3600"}


def _refused(case, cache):
    """Converge with the case's variables; return (case, exit code, output)."""
    with tempfile.TemporaryDirectory() as tmp:
        extra = Path(tmp) / "vars.json"
        extra.write_text(json.dumps(case["vars"]))
        args = ["-e", f"@{extra}"]
        if case.get("tailscale"):
            groups = Path(tmp) / "tailscale.yml"
            groups.write_text(yaml.safe_dump({"dagster_tailscale": {"hosts": {HOST: {"dagster_tailscale_install": False}}}}))
            args += ["-i", str(groups)]
        rc, output, _ = ansible_playbook(PROJECT / "playbooks/site.yml", None, *args,
                                         env={**FACT_CACHE, "ANSIBLE_CACHE_PLUGIN_CONNECTION": cache})
    return case, rc, output


def _files(host):
    """Every file, link and directory under SNAPSHOT_PATHS: type, mode, owner, group, link target, content."""
    # Those that exist (a socket-only database has no /etc/dagster-postgresql); one that appears is a change.
    paths = " ".join(host.check_output(f"ls -d {SNAPSHOT_PATHS} 2>/dev/null || true").split())
    files = {}
    for line in host.check_output(f"find {paths} -printf '%p\\t%y %m %u %g %l\\n'").splitlines():
        path, _, info = line.partition("\t")
        files[path] = info
    for line in host.check_output(f"find {paths} -type f -print0 | xargs -0 sha256sum").splitlines():
        digest, _, path = line.partition("  ")
        files[path] += " " + digest
    return files


def _state(host):
    """What a refused converge must leave as it was: files, database settings and roles, service pids."""
    postgresql = host.check_output(
        f"systemctl list-units --plain --no-legend '{POSTGRESQL_UNIT}' | cut -d' ' -f1"
    ).split()
    assert postgresql, "no PostgreSQL cluster unit"
    return {
        "files": _files(host),
        "pg_settings": psql(host, PG_SETTINGS, database="postgres"),
        "pg_authid": hashlib.sha256(psql(host, PG_AUTHID, database="postgres").encode()).hexdigest(),
        "pids": {unit: main_pid(host, unit) for unit in UNITS + postgresql},
    }


# The variables' prefixes of the roles the catalogue spans.
ROLE_PREFIXES = {"dagster_webserver", "dagster_code_locations", "dagster_code_location_", "dagster_postgresql",
                 "dagster_healthcheck", "dagster_tailscale"}


def _sampled(index, case):
    """In CI's sample of the catalogue: every fourth case, and the first case of each role's prefix."""
    prefixes = [p for p in ROLE_PREFIXES if case["names"].startswith(p)]
    first = next((i for i, c in enumerate(CATALOGUE) if any(c["names"].startswith(p) for p in prefixes)), None)
    return index % 4 == 0 or index == first


# Every case converges in scripts/test.sh soak; CI converges the sample (the others are marked soak).
CASES = [pytest.param(case, id=case["id"], marks=() if _sampled(i, case) else pytest.mark.soak)
         for i, case in enumerate(CATALOGUE)]
REFUSAL_TEST = "test_bad_input_is_refused_in_the_first_play_naming_the_field"


@pytest.fixture(scope="module")
def catalogue_results(request, host):
    """The refused converges of the cases selected to run, the first alone (it caches the facts)."""
    selected = [item.callspec.params["case"] for item in request.session.items
                if item.originalname == REFUSAL_TEST]
    # test_refused_converges_left_the_host_unchanged compares the host around at least one converge.
    selected = selected or CATALOGUE[:1]
    before = _state(host)
    assert all(before["pids"].values()), before["pids"]
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as cache:
        results = [_refused(selected[0], cache)]
        assert os.listdir(cache), "the first converge cached no facts"
        with ThreadPoolExecutor(max_workers=4) as pool:
            results += list(pool.map(lambda case: _refused(case, cache), selected[1:]))
    print(f"{len(selected)} of the catalogue's {len(CATALOGUE)} refused converges in {time.monotonic() - started:.0f} s")
    return results, before, _state(host)


def _roles(cases):
    """The role prefixes whose variables the cases name."""
    return {p for p in ROLE_PREFIXES if any(case["names"].startswith(p) for case in cases)}


def test_the_catalogue_is_large_and_spans_every_role():
    assert len(CATALOGUE) >= 70
    assert len({case["id"] for case in CATALOGUE}) == len(CATALOGUE)
    assert _roles(CATALOGUE) == ROLE_PREFIXES
    # CI's sample spans every role too.
    assert _roles([case for i, case in enumerate(CATALOGUE) if _sampled(i, case)]) == ROLE_PREFIXES


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_refused_in_the_first_play_naming_the_field(catalogue_results, case):
    results = catalogue_results[0]
    _, rc, output = next(result for result in results if result[0]["id"] == case["id"])
    assert rc != 0, output[-3000:]
    assert case["names"] in output, output[-3000:]
    # The message as the user sees it, for the record (the first line naming the field).
    print(f"refused {case['id']}: " + next(line.strip() for line in output.splitlines() if case["names"] in line))
    # Stopped in the read-only first play, before the first play that can change a host.
    plays = re.findall(r"^PLAY \[(.*)\]", output, re.MULTILINE)
    assert plays == [CHECK_PLAY], (plays, output[-3000:])
    assert FIRST_CHANGING_PLAY not in output, output[-3000:]
    assert "changed=0" in output and "failed=1" in output, output[-1500:]


def test_the_check_play_is_site_ymls_first_and_the_next_one_changes_hosts():
    plays = yaml.safe_load((PROJECT / "playbooks/site.yml").read_text())
    assert [play["name"] for play in plays[:2]] == [CHECK_PLAY, FIRST_CHANGING_PLAY]


def test_refused_converges_left_the_host_unchanged(catalogue_results):
    _, before, after = catalogue_results
    files_before, files_after = before["files"], after["files"]
    assert len(files_before) > 1000 and any(path.endswith("postgresql.auto.conf") for path in files_before)
    changed = sorted(path for path in files_before.keys() | files_after.keys()
                     if files_before.get(path) != files_after.get(path))
    assert changed == [], [(path, files_before.get(path), files_after.get(path)) for path in changed[:20]]
    assert after["pg_settings"] == before["pg_settings"], "PostgreSQL's settings changed"
    assert after["pg_authid"] == before["pg_authid"], "PostgreSQL's roles changed"
    assert after["pids"] == before["pids"], "a service was restarted"


@pytest.mark.parametrize("unit", ["dagster-webserver.service", f"dagster-code-location@{LOCATION}.service"])
def test_environment_values_reach_the_services_unchanged(host, unit):
    # The environment file's quoting, read back by systemd: the process holds the exact bytes.
    environ = base64.b64decode(host.check_output(f"base64 -w0 /proc/{main_pid(host, unit)}/environ"))
    variables = dict(entry.split(b"=", 1) for entry in environ.split(b"\0") if b"=" in entry)
    assert variables[b"DAGSTEROPS_QUOTING_PROBE"] == QUOTING_PROBE.encode(), variables[b"DAGSTEROPS_QUOTING_PROBE"]


# --- killed processes -----------------------------------------------------------------------------


@pytest.mark.parametrize("unit", UNITS)
def test_killed_main_process_comes_back_within_the_limit(host, unit):
    before = main_pid(host, unit)
    killed_at = time.time()
    started = time.monotonic()
    host.check_output(f"kill -9 {before}")

    def back():
        pid = main_pid(host, unit)
        return pid not in (0, before) and host.service(unit).is_running and answering(host, unit)

    wait_for(back, 60, step=0.5, message=lambda: journal(host, unit))
    if unit == "dagster-daemon.service":
        wait_for(lambda: daemon_heartbeats_since(host, killed_at), 60, step=0.5, message=lambda: journal(host, unit))
    seconds = time.monotonic() - started
    verdict = "within" if seconds <= RECOVERY_TARGET else "MISSED"
    print(f"FIGURE {unit}: killed, active and answering again after {seconds:.1f} s "
          f"({verdict} the {RECOVERY_TARGET} s target)")
    # Whatever was killed, the instance serves the location again before the next test.
    wait_for(lambda: location_loaded(host), 60, step=0.5, message=lambda: journal(host, "dagster-webserver.service"))
    print(f"  and the instance has the code location loaded after {time.monotonic() - started:.1f} s")
    assert seconds <= RECOVERY_LIMIT, f"{unit} took {seconds:.1f} s (limit {RECOVERY_LIMIT} s)"


# --- the database away ----------------------------------------------------------------------------

# Seconds PostgreSQL stays stopped: two minutes in scripts/test.sh soak, a restart's few seconds and more in CI.
OUTAGE = 120 if SOAK else 20


def _recovered(host, since):
    """Seconds from `since` until each server answers again and the daemon beats, measured from now on."""
    found = {}
    deadline = time.monotonic() + 180
    while len(found) < 3 and time.monotonic() < deadline:
        for key, check in (
            ("webserver", lambda: answering(host, "dagster-webserver.service")),
            ("code server", lambda: answering(host, UNITS[2]) and location_loaded(host)),
            ("daemon", lambda: daemon_heartbeats_since(host, time.time() - 20)),
        ):
            if key not in found and check():
                found[key] = time.monotonic() - since
        time.sleep(0.5)
    return found


def _never_gave_up(host):
    states = {unit: host.check_output(f"systemctl show -p ActiveState --value {unit}") for unit in UNITS}
    return [unit for unit, state in states.items() if state == "failed"]


def test_the_database_away_is_recovered_from_without_help(host):
    host.check_output("systemctl stop postgresql.service")
    try:
        time.sleep(OUTAGE)
        assert not _never_gave_up(host), _never_gave_up(host)
    finally:
        host.check_output("systemctl start postgresql.service")
    back = time.monotonic()
    recovered = _recovered(host, back)
    print("after PostgreSQL was away for %d s: %s" % (
        OUTAGE, ", ".join(f"{key} back in {seconds:.1f} s" for key, seconds in recovered.items())))
    assert set(recovered) == {"webserver", "code server", "daemon"}, (recovered, journal(host, "dagster-daemon"))
    # The next five launches are all taken, and all succeed.
    refused = []
    runs = []
    for _ in range(5):
        try:
            runs.append(launch_run(host, LOCATION, "example_job"))
        except AssertionError as error:
            refused.append(str(error).splitlines()[0])
    print(f"launches refused after the database came back: {len(refused)} of 5")
    assert not refused, refused
    for run_id in runs:
        assert wait_for_run(host, run_id)[0] == "SUCCESS"


def test_a_database_unreachable_at_start_is_waited_for(host):
    """The servers start while PostgreSQL is down, as at a boot where it is not up yet, and come up once it is."""
    host.check_output("systemctl stop postgresql.service")
    try:
        host.check_output("systemctl restart dagster-webserver.service dagster-daemon.service")
        time.sleep(30)
        assert not _never_gave_up(host), _never_gave_up(host)
    finally:
        host.check_output("systemctl start postgresql.service")
    recovered = _recovered(host, time.monotonic())
    print("servers started without the database: " + ", ".join(
        f"{key} up {seconds:.1f} s after it came" for key, seconds in recovered.items()))
    assert set(recovered) == {"webserver", "code server", "daemon"}, recovered
    run_succeeds(host)


# --- the daemon stopped under queued runs ----------------------------------------------------------


def test_queued_runs_wait_for_the_daemon_and_start_when_it_is_back(host):
    host.check_output("systemctl stop dagster-daemon.service")
    try:
        runs = [launch_run(host, LOCATION, "example_job") for _ in range(2)]
        time.sleep(15)
        assert [run_status(host, run_id)["status"] for run_id in runs] == ["QUEUED", "QUEUED"]
    finally:
        host.check_output("systemctl start dagster-daemon.service")
    back = time.monotonic()
    wait_for(lambda: all(run_status(host, run_id)["status"] not in ("QUEUED", "NOT_STARTED") for run_id in runs), 60,
             step=0.5, message=lambda: [run_status(host, run_id)["status"] for run_id in runs])
    print(f"queued runs left the queue {time.monotonic() - back:.1f} s after the daemon started")
    for run_id in runs:
        assert wait_for_run(host, run_id)[0] == "SUCCESS"


# --- a crash loop ----------------------------------------------------------------------------------

CRASH = "/run/systemd/system/dagster-webserver.service.d/crash.conf"


def test_a_crash_loop_keeps_trying_and_heals_when_the_cause_goes(host):
    unit = "dagster-webserver.service"
    policy = host.check_output(f"systemctl show -p Restart -p RestartUSec -p StartLimitIntervalUSec {unit}")
    assert set(policy.split()) == {"Restart=always", "RestartUSec=2s", "StartLimitIntervalUSec=0"}, policy
    host.check_output(
        f"mkdir -p {Path(CRASH).parent} && printf '[Service]\\nExecStart=\\nExecStart=/bin/false\\n' > {CRASH} "
        f"&& systemctl daemon-reload && systemctl restart {unit} || true"
    )
    try:
        time.sleep(30)
        restarts = int(host.check_output(f"systemctl show -p NRestarts --value {unit}"))
        state = host.check_output(f"systemctl show -p ActiveState --value {unit}")
        print(f"crash loop: {restarts} restarts in 30 s, {state}")
        # Still trying (no start limit), and the journal says why it fails.
        assert restarts >= 5 and state != "failed", (restarts, state)
        assert "status=1/FAILURE" in host.check_output(f"journalctl -u {unit} -n 50 --no-pager")
    finally:
        # Only the cause goes: no reset-failed, no start. The unit heals on its own.
        host.check_output(f"rm -f {CRASH} && systemctl daemon-reload")
    wait_for(lambda: answering(host, unit), 60, step=0.5, message=lambda: journal(host, unit))


# --- the machine restarted -------------------------------------------------------------------------


def test_everything_comes_back_after_a_restart_of_the_machine(host):
    subprocess.run(["docker", "restart", "--time", "30", HOST], check=True, capture_output=True)
    restarted_at = time.time()
    wait_for(lambda: host.run("systemctl is-system-running").stdout.strip() in ("running", "degraded"), 180, step=2,
             message=lambda: host.run("systemctl --failed --no-pager").stdout)
    for unit in UNITS + ["postgresql.service"]:
        assert host.service(unit).is_enabled, unit
        wait_for(lambda u=unit: host.service(u).is_running, 60, step=0.5, message=lambda u=unit: journal(host, u))
    wait_for(lambda: answering(host, "dagster-webserver.service"), 120, step=0.5, message="the webserver does not answer")
    wait_for(lambda: daemon_heartbeats_since(host, restarted_at), 120, step=0.5,
             message=lambda: journal(host, "dagster-daemon.service"))
    assert host.run("systemctl --failed --no-legend").stdout.strip() == ""
    seconds = run_succeeds(host)
    print(f"after the restart: all units active, daemon heartbeat fresh, a run in {seconds:.1f} s")


# --- a killed run worker -------------------------------------------------------------------------

STORAGE = "/var/lib/dagster/storage"
# The code server watches the processes of its runs every 0.5 s and marks a run whose process died
# FAILED (dagster/_grpc/server.py, CLEANUP_TICK); the bound adds the database write and this test's
# 1 s polling on a shared machine, and stays far below run monitoring's 120 s poll interval.
KILLED_RUN_BOUND = 10


def _as_dagster(host, command):
    result = host.run(f"runuser -u dagster -- sh -c '{command}'")
    assert result.rc == 0, result.stderr
    return result


def test_a_killed_run_worker_is_marked_failed_and_its_control_run_succeeds(host):
    """Two runs of pause_job on the deployed location, each waiting for its release
    file; one's worker is killed. It is marked FAILED within the bound, while the
    control, on the same server and started with it, runs on and succeeds."""
    releases = {name: f"{STORAGE}/release-{name}" for name in ("killed", "control")}
    _as_dagster(host, " ".join(f"rm -f {path};" for path in releases.values()))
    runs = {name: launch_run(host, LOCATION, "pause_job", run_config={
        "ops": {"pause": {"config": {"seconds": 900, "release_file": path}}}}) for name, path in releases.items()}
    workers = {}
    for name, run_id in runs.items():
        started = wait_for(lambda r=run_id: pause_job_worker_pids(host, r)["started"], 90, step=0.5,
                           message=lambda n=name, r=run_id: f"the worker of the {n} run did not start: {run_status(host, r)}")
        workers[name] = started[0]
    host.check_output(f"kill -9 {workers['killed']}")
    status, seconds, seen = wait_for_run(host, runs["killed"], timeout=KILLED_RUN_BOUND + 60)
    print(f"run worker killed: {' -> '.join(seen)} {seconds:.1f} s after the kill (bound {KILLED_RUN_BOUND} s)")
    assert status == "FAILURE", seen
    assert seconds <= KILLED_RUN_BOUND, seconds
    assert int(psql(host, f"SELECT count(*) FROM event_logs WHERE run_id='{runs['killed']}' "
                          "AND event LIKE '%was terminated by signal 9 (SIGKILL)%'")) >= 1
    assert run_status(host, runs["control"])["status"] == "STARTED"
    _as_dagster(host, f"touch {releases['control']}")
    assert wait_for_run(host, runs["control"])[0] == "SUCCESS"
    assert pause_job_worker_pids(host, runs["control"]) == {"started": [workers["control"]],
                                                            "finished": [workers["control"]]}
    _as_dagster(host, " ".join(f"rm -f {path};" for path in releases.values()))
