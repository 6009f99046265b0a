"""Maintenance of a Dagster instance through Dagster's own Python API.

Run with the instance's Python, as the dagster user, with DAGSTER_HOME and the
service environment set (the units and tasks of the dagster role do that).

    dagster-ops.py in-flight                 print the ids of the runs in progress, one a line
    dagster-ops.py wait-idle --timeout S     wait until no run is in progress (exit 3 on timeout,
                                             naming the runs still in progress)
    dagster-ops.py purge-runs --days N [--status S ...] [--dry-run]
                                             delete finished runs older than N days with their event logs
    dagster-ops.py fail-lost-runs --location NAME ... [--dry-run]
                                             mark FAILED the started runs of the named locations, whose
                                             runs execute on this host, whose worker process is gone
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import socket
import sys
import time

from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter

IN_FLIGHT = (
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
)
FINISHED = {
    DagsterRunStatus.SUCCESS.value: DagsterRunStatus.SUCCESS,
    DagsterRunStatus.FAILURE.value: DagsterRunStatus.FAILURE,
    DagsterRunStatus.CANCELED.value: DagsterRunStatus.CANCELED,
}
BATCH = 100


def in_flight(instance):
    """The ids of the runs in progress."""
    return [record.dagster_run.run_id
            for record in instance.get_run_records(RunsFilter(statuses=list(IN_FLIGHT)))]


def wait_idle(instance, timeout, interval=5.0):
    deadline = time.monotonic() + timeout
    while True:
        runs = in_flight(instance)
        if not runs:
            print("no runs in progress")
            return 0
        if time.monotonic() >= deadline:
            print(f"{len(runs)} run(s) still in progress after {timeout:.0f} s: {', '.join(runs)}", file=sys.stderr)
            return 3
        print(f"waiting for {len(runs)} run(s) in progress: {', '.join(runs)}", flush=True)
        time.sleep(min(interval, max(deadline - time.monotonic(), 0.1)))


def purge_runs(instance, days, statuses, dry_run=False):
    """Delete runs of the given finished statuses last updated more than `days` ago."""
    cutoff = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=days)
    run_filter = RunsFilter(statuses=statuses, updated_before=cutoff)
    deleted = 0
    while True:
        records = instance.get_run_records(filters=run_filter, limit=BATCH)
        if not records:
            break
        for record in records:
            if dry_run:
                print(f"would delete run {record.dagster_run.run_id} ({record.dagster_run.status.value})")
            else:
                instance.delete_run(record.dagster_run.run_id)
            deleted += 1
        if dry_run or len(records) < BATCH:
            break
    verb = "would delete" if dry_run else "deleted"
    names = ", ".join(status.value for status in statuses)
    print(f"{verb} {deleted} run(s) ({names}) last updated before {cutoff.isoformat(timespec='seconds')}")
    return 0


# The engine event a run worker logs first, from its own process (dagster api execute_run).
WORKER_STARTED = re.compile(r"Started process for run \(pid: (\d+)\)")
# Workspace entries whose runs execute on this host: the servers the daemon starts for
def worker(instance, run_id):
    """(pid, time) of the run's worker process as it logged itself, or None."""
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        # An engine event's text is its DagsterEvent's message (the entry's user_message is empty).
        message = entry.dagster_event.message if entry.dagster_event is not None else entry.user_message
        found = WORKER_STARTED.search(message or "")
        if found:
            return int(found.group(1)), entry.timestamp
    return None


# How much later than its log entry a process may seem to have started and still be taken for
# the worker: a step of the wall clock since then shifts the two apart.
CLOCK_SLACK = 60.0


def process_alive(pid, logged_at):
    """Whether the worker that logged itself as `pid` at `logged_at` still runs.

    Not if the entry is older than this boot, and not if process `pid` started well after the
    entry: that is a later process that was given the same pid."""
    booted = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
    if logged_at < booted:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return False
    if fields[0] == "Z":
        return False
    started = booted + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    return started <= logged_at + CLOCK_SLACK


def fail_lost_runs(instance, locations, dry_run=False):
    """Mark FAILED each STARTED run of this host's locations whose worker process is gone.

    A run's worker lives in the unit that launched it (the daemon, or a code server on
    this host). It survives a restart of that unit's main process; if the whole unit
    was killed or the host restarted, no process is left to report the run's end, and
    Dagster's run monitoring does not check a worker of the default run launcher.
    """
    if not instance.run_monitoring_enabled:
        print("run monitoring is off: nothing to check")
        return 0
    failed = checked = 0
    for record in instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.STARTED])):
        run = record.dagster_run
        origin = run.remote_job_origin
        if origin is None or origin.location_name not in locations:
            continue
        logged = worker(instance, run.run_id)
        if logged is None:
            continue
        checked += 1
        pid, logged_at = logged
        if process_alive(pid, logged_at):
            continue
        # Its end may have been stored since it was listed.
        run = instance.get_run_by_id(run.run_id)
        if run is None or run.status != DagsterRunStatus.STARTED:
            continue
        failed += 1
        if dry_run:
            print(f"run {run.run_id} ({origin.location_name}): worker pid {pid} is gone, would mark it FAILED")
            continue
        instance.report_run_failed(
            run,
            f"The run's worker process (pid {pid}) on {socket.gethostname()} is gone without reporting the "
            "run's end: the unit that ran it was killed, or the host restarted.",
        )
        print(f"run {run.run_id} ({origin.location_name}): worker pid {pid} is gone, marked FAILED")
    verb = "would mark" if dry_run else "marked"
    print(f"{checked} started run(s) of {len(locations)} location(s) here checked, {failed} {verb} FAILED")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("in-flight")
    wait = commands.add_parser("wait-idle")
    wait.add_argument("--timeout", type=float, required=True)
    purge = commands.add_parser("purge-runs")
    purge.add_argument("--days", type=int, required=True)
    purge.add_argument("--status", action="append", choices=sorted(FINISHED), dest="statuses")
    purge.add_argument("--dry-run", action="store_true")
    lost = commands.add_parser("fail-lost-runs")
    lost.add_argument("--location", action="append", dest="locations", required=True,
                      help="a location whose runs execute on this host (repeated for each)")
    lost.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)

    with DagsterInstance.get() as instance:
        if args.command == "in-flight":
            print("".join(run_id + "\n" for run_id in in_flight(instance)), end="")
            return 0
        if args.command == "wait-idle":
            return wait_idle(instance, args.timeout)
        if args.command == "fail-lost-runs":
            return fail_lost_runs(instance, set(args.locations), args.dry_run)
        if args.days < 1:
            parser.error("--days must be at least 1")
        statuses = [FINISHED[name] for name in (args.statuses or sorted(FINISHED))]
        return purge_runs(instance, args.days, statuses, args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
