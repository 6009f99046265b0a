"""Celery across hosts as a user checks it: the steps of the location's runs go
through the broker (Redis on broker) to the workers on worker1 and worker2, on the
scenario's own network 10.213.51.0/24. Figures are printed as "FIGURE ..." lines."""

from __future__ import annotations

import re
import shutil
import time

import pytest
import testinfra
from dagster_checks import PROJECT as ROOT
from dagster_checks import (
    ansible_playbook,
    exposure_score,
    journal,
    launch_run,
    psql,
    scenario_config,
    wait_for,
    wait_for_run,
)

DB, BROKER, CODE, WORKER1, WORKER2 = (
    "dagster-celery-db",
    "dagster-celery-broker",
    "dagster-celery-code",
    "dagster-celery-worker1",
    "dagster-celery-worker2",
)
WORKERS = (WORKER1, WORKER2)
ADDRESSES = {DB: "10.213.51.10", BROKER: "10.213.51.11", CODE: "10.213.51.12",
             WORKER1: "10.213.51.13", WORKER2: "10.213.51.14"}
LOCATION, JOB = "celery", "six_steps"
WORKER_UNIT = "dagster-celery-worker@celery.service"
SERVER_UNIT = "dagster-code-location@celery.service"
BROKER_UNIT = "redis-server.service"
ENV_FILE = "/etc/dagster/code-locations/celery.env"
VENV_PYTHON = "/opt/dagster/code-locations/celery/venv/bin/python"
CONCURRENCY = 2  # the role's default, per worker
VISIBILITY_TIMEOUT = 40  # molecule.yml
# Longer than the redis client's retries in the run's coordinator (a few seconds).
OUTAGE_SECONDS = 30
STEP_LINE = re.compile(r"celery step (step_\d) (started|finished) on (\S+) pid (\d+)")


def scenario_locations():
    """dagster_code_locations as molecule.yml gives it."""
    config = scenario_config(ROOT / "molecule/celery")
    return config["provisioner"]["inventory"]["group_vars"]["all"]["dagster_code_locations"]


def host(name):
    return testinfra.get_host(f"docker://{name}")


@pytest.fixture(scope="module")
def db():
    return host(DB)


@pytest.fixture(scope="module")
def broker():
    return host(BROKER)


def steps_config(seconds):
    return {"ops": {f"step_{number}": {"config": {"seconds": seconds}} for number in range(1, 7)}}


def step_log(db, run_id):
    """[(step, started|finished, host, pid)] of the run, oldest first, read from its event log."""
    rows = psql(db, f"SELECT event FROM event_logs WHERE run_id='{run_id}' AND event LIKE '%celery step %' ORDER BY id")
    return STEP_LINE.findall(rows)


def started(db, run_id):
    return [(step, where) for step, moment, where, _ in step_log(db, run_id) if moment == "started"]


def finished(db, run_id):
    return [(step, where) for step, moment, where, _ in step_log(db, run_id) if moment == "finished"]


def main_pid(which):
    return int(host(which).check_output(f"systemctl show -p MainPID --value {WORKER_UNIT}"))


def run_to_the_end(db, run_id, timeout=240):
    status, seconds, seen = wait_for_run(db, run_id, timeout=timeout)
    assert status == "SUCCESS", (seen, psql(db, f"SELECT event FROM event_logs WHERE run_id='{run_id}' "
                                                "AND dagster_event_type IN ('PIPELINE_FAILURE','STEP_FAILURE')"),
                                 journal(host(WORKER1), WORKER_UNIT), journal(host(WORKER2), WORKER_UNIT))
    return seconds


@pytest.fixture(autouse=True)
def workers_running():
    """Each test starts with both workers up (a test may stop one)."""
    yield
    for which in WORKERS:
        host(which).run(f"systemctl start {WORKER_UNIT}")


# --- the units --------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", WORKERS)
def test_the_worker_runs_dagster_celerys_app_on_the_locations_queue(which):
    worker = host(which)
    assert worker.service(WORKER_UNIT).is_running and worker.service(WORKER_UNIT).is_enabled
    argv = worker.file(f"/proc/{main_pid(which)}/cmdline").content.split(b"\0")
    line = " ".join(part.decode() for part in argv if part)
    assert "--app dagster_celery.app worker" in line and "--prefetch-multiplier=1" in line, line
    # Celery expands %h: the node name is NAME@HOST.
    assert f"--queues dagster --concurrency {CONCURRENCY} --hostname celery@%h" in line, line
    assert "redis" not in line, line
    assert f"celery@{which} ready." in journal(worker, WORKER_UNIT, 400)


def test_only_the_celery_hosts_hold_the_celery_pieces(db):
    assert not db.file("/etc/systemd/system/dagster-celery-worker@.service").exists
    assert not host(CODE).service(WORKER_UNIT).is_running
    assert host(CODE).service(SERVER_UNIT).is_running


@pytest.mark.parametrize(("which", "unit"), [(WORKER1, WORKER_UNIT), (BROKER, BROKER_UNIT)])
def test_exposure(which, unit):
    score = exposure_score(host(which), unit)
    print(f"FIGURE exposure {unit} on {which}: {score}")
    assert score <= 3.5, score


@pytest.mark.parametrize("which", WORKERS)
def test_a_stop_signals_the_worker_alone(which):
    """KillMode=mixed: the step processes are the worker's to stop once their steps end."""
    show = host(which).check_output(f"systemctl show -p KillMode -p TimeoutStopUSec -p ExecReload {WORKER_UNIT}")
    assert "KillMode=mixed" in show and "TimeoutStopUSec=10min" in show, show
    assert "kill -HUP" in show.replace("/bin/kill", "kill"), show


# --- the steps ---------------------------------------------------------------------------------------


def test_six_independent_steps_run_on_both_workers(db):
    run_id = launch_run(db, LOCATION, JOB, run_config=steps_config(3))
    seconds = run_to_the_end(db, run_id)
    done = finished(db, run_id)
    assert sorted(step for step, _ in done) == [f"step_{number}" for number in range(1, 7)], done
    assert {where for _, where in done} == set(WORKERS), done
    print(f"FIGURE six 3 s steps on two workers of {CONCURRENCY}: {seconds:.1f} s, "
          f"{sum(where == WORKER1 for _, where in done)} on worker1, {sum(where == WORKER2 for _, where in done)} on worker2")


def test_the_code_server_sends_the_steps_and_runs_none(db):
    run_id = launch_run(db, LOCATION, JOB, run_config=steps_config(1))
    run_to_the_end(db, run_id)
    assert CODE not in {where for _, where in finished(db, run_id)}


def test_a_reload_lets_the_steps_in_progress_finish(db):
    """What a converge does to a worker when the location's code changes (below): the
    worker takes no new step, its steps finish where they run, and it starts again in
    place. The steps are shorter than the visibility timeout (molecule.yml), as a
    deployment's steps must be."""
    run_id = launch_run(db, LOCATION, JOB, run_config=steps_config(12))
    wait_for(lambda: len([1 for _, where in started(db, run_id) if where == WORKER1]) == CONCURRENCY, 90,
             message=lambda: started(db, run_id))
    before = main_pid(WORKER1)
    restarts = journal(host(WORKER1), WORKER_UNIT, 2000).count("Restarting celery worker")
    host(WORKER1).check_output(f"systemctl reload {WORKER_UNIT}")
    run_to_the_end(db, run_id)
    log = step_log(db, run_id)
    for step in {s for s, _, _, _ in log}:
        runs = [(moment, where, pid) for s, moment, where, pid in log if s == step]
        assert [moment for moment, _, _ in runs] == ["started", "finished"], (step, runs)
        assert runs[0][1:] == runs[1][1:], (step, runs)
    assert main_pid(WORKER1) == before
    assert journal(host(WORKER1), WORKER_UNIT, 2000).count("Restarting celery worker") == restarts + 1


def test_a_code_change_reloads_the_workers(tmp_path):
    changed = tmp_path / "celery_location"
    shutil.copytree(ROOT / "molecule/celery/files/celery_location", changed)
    (changed / "revision.py").write_text("REVISION = 2\n")
    locations = [dict(location, source={"directory": str(changed)}) for location in scenario_locations()]
    before = {which: main_pid(which) for which in WORKERS}
    restarts = {which: journal(host(which), WORKER_UNIT, 2000).count("Restarting celery worker") for which in WORKERS}
    rc, output, seconds = ansible_playbook(ROOT / "playbooks/site.yml", {"dagster_code_locations": locations})
    assert rc == 0, output[-4000:]
    recap = dict(re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", output, re.M))
    assert recap[DB] == recap[BROKER] == "0", recap
    for which in WORKERS:
        assert host(which).file("/opt/dagster/code-locations/celery/src/revision.py").exists
        wait_for(lambda which=which: journal(host(which), WORKER_UNIT, 2000).count("Restarting celery worker")
                 == restarts[which] + 1, 60, message=which)
        assert main_pid(which) == before[which], which
    print(f"FIGURE a converge with new code for the Celery location: {seconds:.1f} s")


def test_a_worker_for_a_location_not_declared_stops_site_yml_before_any_change():
    rc, output, _ = ansible_playbook(ROOT / "playbooks/site.yml",
                                     {"dagster_celery_worker_locations": [{"name": "reports"}]})
    assert rc != 0
    assert (f"dagster_celery_worker_locations of {WORKER1}[0].name: 'reports' is not a location of "
            "dagster_code_locations with executor: celery (those are: celery)") in output, output[-3000:]
    recap = dict(re.findall(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", output, re.M))
    assert set(recap.values()) == {"0"}, recap


def test_a_worker_killed_mid_step_hands_its_steps_to_the_other_worker(db):
    """As documented: the killed worker's steps were not acknowledged, so the broker
    hands them to the other worker once the visibility timeout has passed."""
    run_id = launch_run(db, LOCATION, JOB, run_config=steps_config(15))
    wait_for(lambda: len([1 for _, where in started(db, run_id) if where == WORKER1]) == CONCURRENCY, 90,
             message=lambda: started(db, run_id))
    killed_steps = {step for step, where in started(db, run_id) if where == WORKER1}
    worker1 = host(WORKER1)
    # The host is lost: every process of the worker at once, and no restart.
    worker1.check_output(f"systemctl kill --signal=SIGKILL {WORKER_UNIT} && systemctl stop {WORKER_UNIT}")
    killed_at = time.monotonic()
    run_to_the_end(db, run_id, timeout=VISIBILITY_TIMEOUT + 200)
    log = step_log(db, run_id)
    for step in killed_steps:
        runs = [(moment, where) for s, moment, where, _ in log if s == step]
        assert runs == [("started", WORKER1), ("started", WORKER2), ("finished", WORKER2)], (step, runs)
    others = {step for step, _ in started(db, run_id)} - killed_steps
    for step in others:
        runs = [(moment, where) for s, moment, where, _ in log if s == step]
        assert runs == [("started", WORKER2), ("finished", WORKER2)] or len(runs) == 2, (step, runs)
    print(f"FIGURE a killed worker's steps finished on the other worker {time.monotonic() - killed_at:.1f} s after "
          f"the kill (visibility timeout {VISIBILITY_TIMEOUT} s, steps of 15 s)")


def queued():
    """The steps waiting in the location's queue, read through the broker as a worker
    reads it (kombu keeps a list per priority: dagster, dagster<sep>3, 6 and 9)."""
    script = ("import os, redis\nr = redis.Redis.from_url(os.environ['CELERY_BROKER_URL'])\n"
              "print(sum(r.llen(k) for k in ['dagster'] + ['dagster\\x06\\x16%d' % p for p in (3, 6, 9)]))\n")
    return int(with_broker_url(host(WORKER1), script))


def with_broker_url(target, script):
    """The output of a Python script run as dagster in the location's venv, with the
    broker's URL in os.environ, read from the location's environment file by the script
    itself: sudo logs a command line, and the values of --preserve-env too."""
    reader = ("import os\n"
              f"for line in open({ENV_FILE!r}).read().splitlines():\n"
              "    if '=' in line and not line.startswith('#'):\n"
              "        key, value = line.split('=', 1)\n"
              "        os.environ[key] = value.strip(\"'\\\"\")\n")
    target.check_output(f"cat > /tmp/broker_probe.py <<'EOF'\n{reader}{script}EOF")
    try:
        return target.check_output(f"sudo -u dagster {VENV_PYTHON} /tmp/broker_probe.py")
    finally:
        target.run("rm -f /tmp/broker_probe.py")


def test_a_broker_outage_keeps_the_queued_steps_and_fails_the_run_clearly(db, broker):
    """As documented: the broker keeps every step it acknowledged through a stop and a
    start; the run whose coordinator lost the broker for longer than its client's
    retries fails, naming the lost connection."""
    for which in WORKERS:
        host(which).check_output(f"systemctl stop {WORKER_UNIT}")
    run_id = launch_run(db, LOCATION, JOB, run_config=steps_config(1))
    wait_for(lambda: queued() == 6, 90, message="six steps queued")
    broker.check_output(f"systemctl stop {BROKER_UNIT}")
    time.sleep(OUTAGE_SECONDS)
    broker.check_output(f"systemctl start {BROKER_UNIT}")
    assert queued() == 6
    status, _, seen = wait_for_run(db, run_id, timeout=120)
    assert status == "FAILURE", seen
    failure = " ".join(message for message in psql(db, f"SELECT event FROM event_logs WHERE run_id='{run_id}' "
                                                        "AND dagster_event_type = 'PIPELINE_FAILURE'").splitlines())
    assert "ConnectionError" in failure, failure
    # The workers still take them.
    for which in WORKERS:
        host(which).check_output(f"systemctl start {WORKER_UNIT}")
    wait_for(lambda: queued() == 0, 120, message="the queue drained")


# --- the broker's URL and password -------------------------------------------------------------------


@pytest.mark.parametrize("which", [CODE, *WORKERS])
def test_the_broker_url_is_in_the_environment_file_alone(which):
    target = host(which)
    env = target.file(ENV_FILE)
    assert (env.user, env.group, env.mode) == ("root", "dagster", 0o640)
    lines = dict(line.split("=", 1) for line in env.content_string.splitlines() if "=" in line and not line.startswith("#"))
    url = lines["CELERY_BROKER_URL"].strip("'\"")
    assert url.startswith(f"rediss://dagster:") and url.endswith(
        f"@{BROKER}:6379/0?ssl_cert_reqs=required&ssl_ca_certs=%2Fetc%2Fdagster%2Fcelery-broker-ca.crt"), url
    assert lines["CELERY_RESULT_BACKEND"].strip("'\"").startswith(url.split("/0?")[0] + "/1?")
    password = url.split("@")[0].split(":")[2]
    target.check_output(f"cat > /tmp/needle <<'EOF'\n{password}\nEOF")
    found = target.run("grep -rlsF -f /tmp/needle /etc /var /opt /root /home /srv /usr/local /tmp --exclude=needle").stdout.split()
    cmdlines = target.run("grep -lsF -f /tmp/needle /proc/[0-9]*/cmdline").stdout.split()
    target.run("rm -f /tmp/needle")
    assert found == [ENV_FILE], found
    assert cmdlines == [], cmdlines


@pytest.mark.parametrize("which", [CODE, WORKER1])
def test_the_broker_refuses_a_wrong_password_and_plain_connections(which):
    script = (
        "import os, redis\n"
        "url = os.environ['CELERY_BROKER_URL']\n"
        "ok = redis.Redis.from_url(url).ping()\n"
        "bad = url.replace(url.split('@')[0].split(':')[2], 'wrong')\n"
        "try:\n    redis.Redis.from_url(bad).ping(); print('wrong password let in')\n"
        "except redis.exceptions.AuthenticationError: print('wrong password refused')\n"
        "plain = url.replace('rediss://', 'redis://').split('?')[0]\n"
        "try:\n    redis.Redis.from_url(plain, socket_timeout=5).ping(); print('plain let in')\n"
        "except redis.exceptions.ConnectionError: print('plain refused')\n"
        "print('ping', ok)\n"
    )
    out = with_broker_url(host(which), script)
    assert out.splitlines() == ["wrong password refused", "plain refused", "ping True"], out


def test_the_broker_turns_away_a_host_that_is_no_client(db):
    """The database host holds no worker or Celery code server: the firewall drops it."""
    probe = (f"import socket; s = socket.socket(); s.settimeout(3); "
             f"print(s.connect_ex(('{ADDRESSES[BROKER]}', 6379)))")
    assert db.run(f"python3 -c \"{probe}\"").stdout.strip() != "0"
    worker = host(WORKER1).run(f"python3 -c \"{probe}\"").stdout.strip()
    assert worker == "0", worker
