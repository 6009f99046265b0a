"""After the upgrade from 1.12.22 to 1.13.27: the old runs, the new release,
the backup, the kept environment; then retries, monitoring and the run purge;
then upgrades that fail (a migration, a wait for runs) and one that drains the
runs; backups and restores; with the secrets on no command line, in no journal
and in no -vvv output along the way."""

import json
import time

import pytest
from dagster_checks import (
    ARGV_SAMPLE_INTERVAL,
    ENVIRON_MARK,
    PROJECT,
    ansible_playbook,
    finish_playbook,
    graphql,
    instance_config,
    journal,
    launch_run,
    psql,
    run_status,
    start_argv_sampler,
    start_playbook,
    stop_argv_sampler,
    wait_for,
    wait_for_run,
    wait_until_started,
)

NEW, OLD = "1.13.27", "1.12.22"

RUNS_BY_TAG = """
query Runs($key: String!, $value: String!) {
  runsOrError(filter: {tags: [{key: $key, value: $value}]}) {
    ... on Runs { results { runId status tags { key value } } }
  }
}
"""


def test_new_release_serves(host):
    out = host.check_output(
        "python3 -c \"import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:3000/server_info').read().decode())\""
    )
    assert json.loads(out)["dagster_version"] == NEW


def test_run_from_before_the_upgrade_is_still_listed(host):
    run_id = host.file("/root/run-before-upgrade").content_string.strip()
    assert run_status(host, run_id)["status"] == "SUCCESS"


def test_previous_environment_was_kept(host):
    venvs = host.check_output("ls /opt/dagster/venvs").split()
    assert any(v.startswith(f"dagster-{OLD}-") for v in venvs), venvs
    current = host.check_output("readlink /opt/dagster/current")
    assert f"dagster-{NEW}-" in current


def test_database_was_dumped_before_the_upgrade(host):
    dumps = host.check_output(f"ls /var/backups/dagster/ | grep -- '-before-{NEW}-from-dagster-{OLD}-' || true").split()
    assert len(dumps) == 1, dumps
    dump = host.file(f"/var/backups/dagster/{dumps[0]}")
    assert dump.size > 10_000 and dump.mode == 0o600 and dump.user == "root" and dump.group == "root"
    # A real custom-format dump holding the runs table.
    listing = host.check_output(f"pg_restore --list /var/backups/dagster/{dumps[0]}")
    assert "TABLE public runs" in listing


def test_migration_ran_once(host):
    log = host.file("/var/lib/dagster/upgrades.log").content_string.strip().splitlines()
    assert len(log) == 1 and f"dagster-{OLD}-" in log[0] and f"dagster-{NEW}-" in log[0], log


def test_new_run_succeeds_after_the_upgrade(host):
    run_id = launch_run(host, "example", "example_job")
    status, seconds, seen = wait_for_run(host, run_id)
    assert status == "SUCCESS", seen
    print(f"run after upgrade: {' -> '.join(seen)} in {seconds:.1f} s")


def test_failed_run_is_retried_to_success(host):
    run_id = launch_run(host, "example", "flaky_job")
    status, _, _ = wait_for_run(host, run_id)
    assert status == "FAILURE"
    deadline = time.monotonic() + 120
    retries = []
    while time.monotonic() < deadline:
        retries = graphql(host, RUNS_BY_TAG, {"key": "dagster/parent_run_id", "value": run_id})["runsOrError"]["results"]
        if retries and retries[0]["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(2)
    assert retries, f"no retry of {run_id}\n{journal(host, 'dagster-daemon')}"
    assert retries[0]["status"] == "SUCCESS", retries
    tags = {t["key"]: t["value"] for t in retries[0]["tags"]}
    assert tags["dagster/retry_number"] == "1"


def test_a_run_past_its_max_runtime_is_failed_by_run_monitoring(host):
    # slow_job sleeps ten minutes; its dagster/max_runtime of 20 s is what ends
    # it: run monitoring (polling as often as the instance's dagster.yaml says)
    # cancels it through the code server and marks it FAILURE. A killed worker
    # is molecule/faults' test.
    max_runtime = 20
    poll = instance_config(host)["run_monitoring"]["poll_interval_seconds"]
    run_id = launch_run(host, "example", "slow_job", tags={"dagster/max_runtime": str(max_runtime)})
    status, _, seen = wait_for_run(host, run_id, timeout=180)
    assert status == "FAILURE", seen
    started, ended = (float(psql(host, f"SELECT {column} FROM runs WHERE run_id='{run_id}'"))
                      for column in ("start_time", "end_time"))
    print(f"run past its max runtime: {' -> '.join(seen)}, ended {ended - started:.1f} s after it started "
          f"(max runtime {max_runtime} s, monitoring every {poll} s)")
    assert int(psql(host, f"SELECT count(*) FROM event_logs WHERE run_id='{run_id}' "
                          f"AND event LIKE '%Exceeded maximum runtime of {max_runtime} seconds%'")) == 1
    assert max_runtime <= ended - started <= max_runtime + 2 * poll + 10


def test_purge_deletes_only_old_finished_runs(host):
    old = [launch_run(host, "example", "example_job") for _ in range(2)]
    recent = launch_run(host, "example", "example_job")
    for run_id in old + [recent]:
        assert wait_for_run(host, run_id)[0] == "SUCCESS"
    running = launch_run(host, "example", "slow_job")
    deadline = time.monotonic() + 90
    while run_status(host, running)["status"] != "STARTED":
        assert time.monotonic() < deadline
        time.sleep(1)
    # Backdate the old runs and the running one, for the test.
    backdated = "','".join(old + [running])
    psql(host, f"UPDATE runs SET update_timestamp = now() - interval '30 days', "
               f"create_timestamp = now() - interval '30 days' WHERE run_id IN ('{backdated}')")
    assert int(psql(host, f"SELECT count(*) FROM event_logs WHERE run_id IN ('{backdated}')")) > 0

    result = host.run("systemctl start dagster-purge-runs.service")
    assert result.rc == 0, journal(host, "dagster-purge-runs.service")
    assert "deleted 2 run(s)" in journal(host, "dagster-purge-runs.service", 5)

    for run_id in old:
        assert psql(host, f"SELECT count(*) FROM runs WHERE run_id='{run_id}'") == "0"
        assert psql(host, f"SELECT count(*) FROM event_logs WHERE run_id='{run_id}'") == "0"
    assert psql(host, f"SELECT status FROM runs WHERE run_id='{recent}'") == "SUCCESS"
    assert psql(host, f"SELECT status FROM runs WHERE run_id='{running}'") == "STARTED"
    # Leave nothing running behind the test.
    host.run(f"pkill -9 -f -- '{running}'")


@pytest.mark.parametrize("unit", ["dagster-purge-runs.timer"])
def test_purge_timer_is_enabled(host, unit):
    assert host.service(unit).is_enabled
    assert host.service(unit).is_running


# --- a migration that fails, then a re-run ---------------------------------------------------------

PENDING = ".dagster-migrate-pending"


def _server_version(host):
    out = host.check_output(
        "python3 -c \"import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:3000/server_info').read().decode())\""
    )
    return json.loads(out)["dagster_version"]


def test_failed_migration_rolls_back(host):
    """A switch to the new release whose migration did not finish: the re-run
    migrates; made to fail (the new release's dagster cannot run), it goes back
    to the old release with the pre-upgrade dump."""
    new_venv = host.check_output("readlink /opt/dagster/current")
    old_venv = host.check_output(f"ls -d /opt/dagster/venvs/dagster-{OLD}-*")
    pre_upgrade = host.check_output(f"ls -t /var/backups/dagster/dagster-*-before-{NEW}-*.pgc | head -n 1")
    before = host.file("/root/run-before-upgrade").content_string.strip()
    migrations = len(host.file("/var/lib/dagster/upgrades.log").content_string.splitlines())
    host.check_output(
        f"printf '%s\\n' '{json.dumps({'previous': old_venv, 'dump': pre_upgrade})}' > {new_venv}/{PENDING}"
    )
    host.check_output(f"chmod 0644 {new_venv}/bin/dagster")
    try:
        rc, output, seconds = ansible_playbook(PROJECT / "playbooks/site.yml", {"dagster_version": NEW})
    finally:
        host.check_output(f"chmod 0755 {new_venv}/bin/dagster")
    print(f"failed migration and rollback: {seconds:.0f} s")
    assert rc != 0, output[-4000:]
    assert f"The migration to Dagster {NEW} failed (Migrate the instance storage:" in output, output[-4000:]
    assert host.check_output("readlink /opt/dagster/current") == old_venv
    assert _server_version(host) == OLD
    assert _services_active(host)
    # The database is the pre-upgrade dump's.
    assert before in _run_ids(host) and _run_ids(host) == _dumped_run_ids(host, pre_upgrade)
    assert len(host.file("/var/lib/dagster/upgrades.log").content_string.splitlines()) == migrations


TERMINATE = """
mutation Terminate($id: String!) {
  terminateRun(runId: $id, terminatePolicy: MARK_AS_CANCELED_IMMEDIATELY) { __typename }
}
"""


# A soak: one more upgrade converge. CI's failed upgrades are the test before it and the one after it,
# which need the state the test before it leaves: the old release current.
@pytest.mark.soak
def test_a_wait_that_times_out_starts_the_instance_again_and_names_the_runs(host):
    old_venv = host.check_output("readlink /opt/dagster/current")
    dumps = _listing(host, f"dagster-*-before-{NEW}-*.pgc")
    slow = launch_run(host, "example", "slow_job")
    wait_until_started(host, slow, timeout=300)
    pids = _main_pids(host)
    rc, output, seconds = ansible_playbook(
        PROJECT / "playbooks/site.yml", {"dagster_version": NEW, "dagster_upgrade_wait_timeout": 3})
    print(f"upgrade whose wait for runs timed out: {seconds:.0f} s")
    assert rc != 0, output[-4000:]
    assert f"The upgrade to Dagster {NEW} stops before any change:" in output, output[-4000:]
    assert f"1 run(s) still in progress after 3 s: {slow}" in output, output[-4000:]
    # The daemon was stopped for the wait and started again; the webserver (queued coordinator) kept running.
    after = _main_pids(host)
    assert after["dagster-daemon.service"] != pids["dagster-daemon.service"], (pids, after)
    assert after["dagster-webserver.service"] == pids["dagster-webserver.service"], (pids, after)
    assert _services_active(host)
    assert host.check_output("readlink /opt/dagster/current") == old_venv
    assert _server_version(host) == OLD
    assert _listing(host, f"dagster-*-before-{NEW}-*.pgc") == dumps
    assert run_status(host, slow)["status"] == "STARTED"
    _end_run(host, slow)


def _end_run(host, run_id):
    """End a run in progress: its worker killed, the run marked canceled."""
    host.run(f"pkill -9 -f -- '{run_id}'")
    assert graphql(host, TERMINATE, {"id": run_id})["terminateRun"]["__typename"] == "TerminateRunSuccess"
    assert wait_for_run(host, run_id, timeout=300)[0] == "CANCELED"


INSTANCE_CONFIG = ("dagster.yaml", "workspace.yaml")


def _config(host):
    return {name: (f.sha256sum, f.user, f.group, f.mode) for name in INSTANCE_CONFIG
            for f in [host.file(f"/var/lib/dagster/{name}")]}


def _task_output(output, name):
    """What the play printed for the task `name` of the dagster role."""
    chunks = [chunk for chunk in output.split("TASK [") if chunk.startswith(f"dagsterops.dagster.dagster : {name}]")]
    assert chunks, f"no task {name!r} in the output"
    return chunks[-1]


def test_a_failed_upgrade_goes_back_with_the_old_configuration(host):
    """A real upgrade (drain, dump, switch, new dagster.yaml) whose migration fails:
    the old release starts again with its own dagster.yaml and workspace.yaml, byte for byte."""
    old_venv = host.check_output("readlink /opt/dagster/current")
    new_venv = host.check_output(f"ls -d /opt/dagster/venvs/dagster-{NEW}-*")
    config = _config(host)
    host.check_output(f"chmod 0644 {new_venv}/bin/dagster")
    try:
        # Another value in dagster.yaml: the new release's configuration differs from the one in place.
        rc, output, seconds = ansible_playbook(
            PROJECT / "playbooks/site.yml", {"dagster_version": NEW, "dagster_max_concurrent_runs": 7})
    finally:
        host.check_output(f"chmod 0755 {new_venv}/bin/dagster")
    print(f"failed upgrade and rollback: {seconds:.0f} s")
    assert rc != 0, output[-4000:]
    assert f"The migration to Dagster {NEW} failed (Migrate the instance storage:" in output, output[-4000:]
    assert "changed:" in _task_output(output, "Write the instance configuration"), "the new configuration was not written"
    assert host.check_output("readlink /opt/dagster/current") == old_venv
    assert _config(host) == config
    assert _server_version(host) == OLD
    assert _services_active(host)


# The install environments of molecule.yml: they reach the installers in their environment only.
INSTALL_TOKENS = ("install-token-location-9b4a2f", "install-token-instance-5e1d7c")
PASSWORD_FILE = "/etc/dagster-postgresql/dagster.password"
def _secrets(host):
    return {"the database password": host.file(PASSWORD_FILE).content_string.strip(),
            "the code location's install environment": INSTALL_TOKENS[0],
            "the instance's install environment": INSTALL_TOKENS[1]}


def _since(host):
    return host.check_output("date '+%Y-%m-%d %H:%M:%S'")


def _assert_no_secret(host, what, output, samples, since):
    """No secret in the -vvv output, on a sampled command line or in the journal since `since`, sudo's lines included."""
    logged = host.check_output(f"journalctl --since '{since}' --no-pager -o cat")
    print(f"{what}: {len(samples.splitlines())} command lines sampled every {ARGV_SAMPLE_INTERVAL} s, {len(logged.splitlines())} journal lines")
    assert "ESTABLISH" in output, f"{what} did not run at -vvv"
    for name, secret in _secrets(host).items():
        assert len(secret) >= 12, name
        assert secret not in output, f"{name} is in the output of {what}"
        assert secret not in samples, f"{name} was on a command line during {what}"
        assert secret not in logged, f"{name} is in the journal during {what}"


def _sampled_playbook(host, what, playbook, extra_vars=None):
    """A playbook at -vvv with the command-line sampler around it; (rc, output, samples)."""
    since = _since(host)
    start_argv_sampler(host)
    try:
        rc, output, seconds = ansible_playbook(playbook, extra_vars, "-vvv")
    finally:
        samples = stop_argv_sampler(host)
    print(f"{what} at -vvv: {seconds:.0f} s")
    _assert_no_secret(host, what, output, samples, since)
    return rc, output, samples


def test_the_upgrade_drains_the_runs_and_shows_no_secret(host):
    """The re-run that finishes the upgrade, at -vvv with the sampler: a run in
    progress is waited for (the upgrade goes on once it ends); a run launched
    once the daemon stopped stays queued and starts on the new release. The
    code location's installation was left unfinished, so that it installs
    again through its helper."""
    old_venv = host.check_output("readlink /opt/dagster/current")
    new_venv = host.check_output(f"ls -d /opt/dagster/venvs/dagster-{NEW}-*")
    migrations = len(host.file("/var/lib/dagster/upgrades.log").content_string.splitlines())
    host.check_output("rm /opt/dagster/code-locations/served/venv/.dagsterops-installed")
    in_progress = launch_run(host, "example", "slow_job")
    wait_until_started(host, in_progress, timeout=300)
    dumps = _listing(host, f"dagster-*-before-{NEW}-*.pgc")
    secrets = _secrets(host)
    since = _since(host)
    start_argv_sampler(host, [INSTALL_TOKENS[0], secrets["the database password"]])
    play = start_playbook(PROJECT / "playbooks/site.yml", {"dagster_version": NEW}, "-vvv")
    try:
        wait_for(lambda: play[0].poll() is not None or host.run(
            "systemctl is-active dagster-daemon.service").stdout.strip() in ("inactive", "failed"), 900,
            message="the daemon did not stop")
        assert play[0].poll() is None, "the play ended before it stopped the daemon"
        drained = time.time()
        queued = launch_run(host, "example", "example_job")
        # Long enough for a daemon to dequeue it (every 2 s here) and for the play to go on, were it not waiting.
        time.sleep(15)
        assert run_status(host, queued)["status"] == "QUEUED"
        assert run_status(host, in_progress)["status"] == "STARTED"
        # Still waiting: no dump yet, the old release in place.
        assert play[0].poll() is None and host.check_output("readlink /opt/dagster/current") == old_venv
        assert _listing(host, f"dagster-*-before-{NEW}-*.pgc") == dumps
        _end_run(host, in_progress)
    finally:
        rc, output, seconds = finish_playbook(play)
        samples = stop_argv_sampler(host)
    print(f"upgrade that drained the runs, at -vvv: {seconds:.0f} s")
    assert rc == 0, output[-4000:]
    _assert_no_secret(host, "the upgrade", output, samples, since)
    # Not blind: it saw the installation's short-lived commands, uv's environment held
    # the install environment, and the daemon's the database password (over TCP).
    assert "/opt/dagster/tools/bin/uv pip install --quiet --compile-bytecode" in samples, samples[-3000:]
    marked = [line[len(ENVIRON_MARK):] for line in samples.splitlines() if line.startswith(ENVIRON_MARK)]
    assert any(line.startswith("0 ") and " pip install " in line for line in marked), marked
    assert any(line.startswith("1 ") and "dagster-daemon run" in line for line in marked), marked

    # The queued run started only on the new release.
    status, _, seen = wait_for_run(host, queued, timeout=600)
    assert status == "SUCCESS", seen
    daemon_started = int(host.check_output(
        "date -d \"$(systemctl show -p ExecMainStartTimestamp --value dagster-daemon.service)\" +%s"))
    started = float(psql(host, f"SELECT start_time FROM runs WHERE run_id='{queued}'"))
    assert daemon_started > drained and started >= daemon_started, (drained, daemon_started, started)
    print(f"run queued during the drain started {started - drained:.0f} s after the daemon stopped")

    assert host.check_output("readlink /opt/dagster/current") == new_venv
    assert not host.file(f"{new_venv}/{PENDING}").exists
    log = host.file("/var/lib/dagster/upgrades.log").content_string.splitlines()
    assert len(log) == migrations + 1 and f"dagster-{OLD}-" in log[-1] and f"dagster-{NEW}-" in log[-1], log
    assert _server_version(host) == NEW
    assert host.file("/opt/dagster/code-locations/served/venv/.dagsterops-installed").exists


# --- backup, restore and rollback playbooks (last: they change the host) -------------------------

BACKUPS = "/var/backups/dagster"
UNITS = ("dagster-webserver.service", "dagster-daemon.service")
# Where the dagster user can write and a root task might: each holds a link to /etc/shadow.
PLANTED = ("/var/lib/dagster/storage/shadow-link", "/var/lib/dagster/shadow-link")


def _services_active(host):
    return all(host.service(u).is_running for u in UNITS)


def _main_pids(host):
    return {u: host.check_output(f"systemctl show -p MainPID --value {u}") for u in UNITS}


def _run_ids(host):
    return set(psql(host, "SELECT run_id FROM runs").split())


def _shadow(host):
    """/etc/shadow's owner, mode and content."""
    return host.check_output("stat -c '%U:%G %a' /etc/shadow && sha256sum /etc/shadow")


def _sentinel(host):
    """A table the dagster role owns and no dump holds: a restore that dropped
    what the role owns takes it away, one rolled back leaves it (same oid)."""
    psql(host, "CREATE TABLE IF NOT EXISTS restore_sentinel (x int)")
    psql(host, "ALTER TABLE restore_sentinel OWNER TO dagster")
    return psql(host, "SELECT 'restore_sentinel'::regclass::oid")


def _sentinel_oid(host):
    return psql(host, "SELECT coalesce(to_regclass('restore_sentinel')::oid::text, 'gone')")


def _dumped_run_ids(host, dump):
    """The run_id column of the runs table in a custom-format dump."""
    data = host.check_output(f"pg_restore --data-only --table=runs --file=- {dump}").splitlines()
    start = next(i for i, line in enumerate(data) if line.startswith("COPY public.runs "))
    columns = data[start].split("(", 1)[1].split(")", 1)[0].split(", ")
    rows = data[start + 1: data.index("\\.", start)]
    ids = {row.split("\t")[columns.index("run_id")] for row in rows}
    assert ids, "no runs in the dump"
    return ids


def _listing(host, pattern):
    return host.check_output(f"cd {BACKUPS} && ls -1 {pattern} 2>/dev/null || true").split()


def _newest(host, pattern):
    return f"{BACKUPS}/{sorted(_listing(host, pattern))[-1]}"


def _plant(host):
    """Links to /etc/shadow, made by the dagster user wherever it can write."""
    for link in PLANTED:
        host.run(f"sudo -u dagster ln -sfn /etc/shadow {link}")
    assert host.file(PLANTED[0]).is_symlink, "the dagster user could not write in its storage"
    # The backup directory is out of its reach.
    assert host.run(f"sudo -u dagster ln -s /etc/shadow {BACKUPS}/planted.pgc").rc != 0
    assert host.run(f"sudo -u dagster ls {BACKUPS}").rc != 0


@pytest.fixture(scope="module")
def backup(host):
    """backup.yml run once: (dump, archive, runs at that moment, /etc/shadow before)."""
    host.check_output("sudo -u dagster sh -c 'echo before-backup > /var/lib/dagster/storage/backup-marker'")
    _plant(host)
    shadow = _shadow(host)
    runs = _run_ids(host)
    rc, output, samples = _sampled_playbook(host, "backup.yml", PROJECT / "playbooks/backup.yml")
    assert rc == 0, output[-4000:]
    # Not blind: the dump's short-lived process was seen.
    assert "pg_dump --format=custom" in samples, samples[-3000:]
    assert _shadow(host) == shadow
    return _newest(host, "dagster-*-manual.pgc"), _newest(host, "home-*.tar.gz"), runs, shadow


def test_backup_directory_and_files_are_root_only(host, backup):
    dump, archive, runs, _ = backup
    directory = host.file(BACKUPS)
    assert (directory.user, directory.group, directory.mode) == ("root", "root", 0o700)
    for path in (dump, archive):
        f = host.file(path)
        assert (f.user, f.group, f.mode) == ("root", "root", 0o600), path
    assert "TABLE public runs" in host.check_output(f"pg_restore --list {dump}")
    # The archive holds DAGSTER_HOME/storage only, links as links.
    members = host.check_output(f"tar -tzf {archive}").split()
    assert {"storage/backup-marker", "storage/shadow-link"} <= set(members)
    assert all(m == "storage/" or m.startswith("storage/") for m in members), members
    assert runs and _services_active(host)


def _refused_restore(host, extra_vars, message):
    """restore.yml fails with `message`, the database and the services untouched."""
    oid, runs, pids = _sentinel(host), _run_ids(host), _main_pids(host)
    rc, output, _ = ansible_playbook(PROJECT / "playbooks/restore.yml", extra_vars)
    assert rc != 0, output[-4000:]
    assert message in output, output[-4000:]
    assert _sentinel_oid(host) == oid
    assert runs <= _run_ids(host)
    assert _main_pids(host) == pids and _services_active(host)
    return output


def test_restore_refuses_a_truncated_dump(host, backup):
    dump = backup[0]
    size = int(host.check_output(f"stat -c %s {dump}"))
    # Cut short where the table of contents still lists and the data no longer reads
    # back: the longest such cut, in steps of 5 %. (PostgreSQL 17's pg_dump writing to
    # a file it was handed also repeats the table of contents at the end, which a
    # restore does not need: cutting that off loses nothing.)
    cut = host.check_output(
        f"for p in $(seq 95 -5 5); do head -c $(({size} * p / 100)) {dump} > /root/truncated.pgc;"
        " pg_restore --list /root/truncated.pgc >/dev/null 2>&1"
        " && ! pg_restore --file=/dev/null /root/truncated.pgc >/dev/null 2>&1 && echo $p && break; done")
    assert cut, "no cut of the dump lists and fails to read back"
    assert host.run("pg_restore --list /root/truncated.pgc").rc == 0
    _refused_restore(host, {"dagster_restore_database_dump": "/root/truncated.pgc", "dagster_restore_confirm": "dagster"},
                     "is incomplete or damaged")


def test_restore_refuses_the_home_archive_as_the_dump(host, backup):
    _refused_restore(host, {"dagster_restore_database_dump": backup[1], "dagster_restore_confirm": "dagster"},
                     "is not a custom-format PostgreSQL dump")


def test_restore_refuses_without_confirmation(host, backup):
    _refused_restore(host, {"dagster_restore_database_dump": backup[0]}, "dagster_restore_confirm")
    _refused_restore(host, {"dagster_restore_database_dump": backup[0], "dagster_restore_confirm": "yes"},
                     "dagster_restore_confirm")


BLOCK_CREATE_TABLE = """
CREATE FUNCTION public.test_block_create() RETURNS event_trigger LANGUAGE plpgsql
  AS 'BEGIN RAISE EXCEPTION ''CREATE TABLE blocked by the test''; END';
CREATE EVENT TRIGGER test_block_create ON ddl_command_end WHEN TAG IN ('CREATE TABLE')
  EXECUTE FUNCTION public.test_block_create();
"""


def test_a_failed_restore_leaves_the_database_as_it_was(host, backup):
    """The drop and the restore are one transaction: a restore that fails half-way
    (here an event trigger refuses its CREATE TABLE) rolls the drop back too."""
    oid, runs = _sentinel(host), _run_ids(host)
    safeties = set(_listing(host, "safety-*.pgc"))
    host.check_output(f"sudo -u postgres psql -d dagster -v ON_ERROR_STOP=1 <<'SQL'\n{BLOCK_CREATE_TABLE}\nSQL")
    try:
        rc, output, _ = ansible_playbook(
            PROJECT / "playbooks/restore.yml",
            {"dagster_restore_database_dump": backup[0], "dagster_restore_confirm": "dagster"},
        )
    finally:
        psql(host, "DROP EVENT TRIGGER test_block_create")
        psql(host, "DROP FUNCTION public.test_block_create()")
    assert rc != 0, output[-4000:]
    assert "CREATE TABLE blocked by the test" in output and "left as it was" in output, output[-4000:]
    assert _sentinel_oid(host) == oid
    assert runs <= _run_ids(host)
    assert set(_listing(host, "safety-*.pgc")) - safeties, "no safety dump was taken"
    assert _services_active(host)


def test_restore_playbook_brings_back_the_backed_up_state(host, backup):
    dump, archive, runs, shadow = backup
    after = launch_run(host, "example", "example_job")
    assert wait_for_run(host, after)[0] == "SUCCESS"
    host.check_output("rm /var/lib/dagster/storage/backup-marker")
    _sentinel(host)
    _plant(host)
    started = time.time()
    rc, output, samples = _sampled_playbook(
        host, "restore.yml", PROJECT / "playbooks/restore.yml",
        {"dagster_restore_database_dump": dump, "dagster_restore_home_archive": archive,
         "dagster_restore_confirm": "dagster"},
    )
    assert rc == 0, output[-4000:]
    # Not blind: the restore's own processes were seen, the helper and its psql session (pg_restore
    # --list of the check can end between two samples on a dump this small, so it is not asked for).
    assert f"restore-database {dump}" in samples and "psql --no-psqlrc" in samples, samples[-3000:]
    # Every run of the dump is back, the run made after the backup is gone. (The
    # retry daemon may add runs at any time, so the set is not compared whole.)
    restored = _run_ids(host)
    assert _dumped_run_ids(host, dump) <= restored
    assert runs <= restored and after not in restored
    assert _sentinel_oid(host) == "gone"
    # The safety dump taken just before holds the state the restore replaced.
    safety = _newest(host, "safety-*-before-restore.pgc")
    assert host.file(safety).mtime.timestamp() >= started - 1
    assert after in _dumped_run_ids(host, safety)
    marker = host.file("/var/lib/dagster/storage/backup-marker")
    assert marker.content_string == "before-backup\n" and marker.user == "dagster"
    assert host.file("/var/lib/dagster/storage/shadow-link").is_symlink
    assert _shadow(host) == shadow
    assert _services_active(host)
    assert wait_for_run(host, launch_run(host, "example", "example_job"))[0] == "SUCCESS"


def test_rotation_keeps_the_newest_and_the_pre_upgrade_dump(host, backup):
    """dagster_backup_keep is 1 here."""
    pre_upgrade = _listing(host, f"dagster-*-before-{NEW}-*.pgc")
    assert len(pre_upgrade) == 1, _listing(host, "*")
    for _ in range(2):
        rc, output, _ = ansible_playbook(PROJECT / "playbooks/backup.yml")
        assert rc == 0, output[-4000:]
    newest = _newest(host, "dagster-*-manual.pgc").rsplit("/", 1)[1]
    assert sorted(_listing(host, "dagster-*.pgc")) == sorted([newest] + pre_upgrade)
    assert len(_listing(host, "home-*.tar.gz")) == 1
    assert len(_listing(host, "safety-*.pgc")) == 1
    assert _shadow(host) == backup[3]


def test_backup_timer_runs_the_same_backup(host, backup):
    assert host.service("dagster-backup.timer").is_enabled
    assert host.service("dagster-backup.timer").is_running
    _plant(host)
    before = set(_listing(host, "dagster-*-scheduled.pgc"))
    result = host.run("systemctl start dagster-backup.service")
    assert result.rc == 0, journal(host, "dagster-backup.service")
    new = set(_listing(host, "dagster-*-scheduled.pgc")) - before
    assert len(new) == 1, _listing(host, "*")
    dump = f"{BACKUPS}/{new.pop()}"
    assert (host.file(dump).user, host.file(dump).mode) == ("root", 0o600)
    assert "TABLE public runs" in host.check_output(f"pg_restore --list {dump}")
    assert host.run(f"pg_restore --file=/dev/null {dump}").rc == 0
    assert _shadow(host) == backup[3]


# A soak: a converge back to the previous release; the restore it builds on runs in CI above.
@pytest.mark.soak
def test_rollback_playbook_returns_to_the_previous_release(host, backup):
    before_upgrade = _newest(host, f"dagster-*-before-{NEW}-from-dagster-{OLD}-*.pgc")
    kept = host.check_output(f"ls -d /opt/dagster/venvs/dagster-{OLD}-*")
    # Read now: the converge on the previous release dumps the restored database before it changes
    # release, and that dump, holding the same runs, rotates this one away (dagster_backup_keep: 1).
    dumped = _dumped_run_ids(host, before_upgrade)
    rc, output, seconds = ansible_playbook(
        PROJECT / "playbooks/rollback.yml",
        {"dagster_version": OLD, "dagster_restore_database_dump": before_upgrade, "dagster_restore_confirm": "dagster"},
    )
    assert rc == 0, output[-4000:]
    print(f"rollback.yml: {seconds:.0f} s")
    assert host.check_output("readlink /opt/dagster/current") == kept
    out = host.check_output(
        "python3 -c \"import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:3000/server_info').read().decode())\""
    )
    assert json.loads(out)["dagster_version"] == OLD
    # The database is the one from before the upgrade: its runs, and nothing after them.
    assert _run_ids(host) == dumped
    # The dump taken before the change of release holds them too.
    assert _dumped_run_ids(host, _newest(host, f"dagster-*-before-{OLD}-from-dagster-{NEW}-*.pgc")) == dumped
    assert host.file("/root/run-before-upgrade").content_string.strip() in _run_ids(host)
    assert wait_for_run(host, launch_run(host, "example", "example_job"))[0] == "SUCCESS"
    assert _shadow(host) == backup[3]
