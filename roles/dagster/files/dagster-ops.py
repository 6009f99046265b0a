"""Maintenance of a Dagster instance through Dagster's own Python API.

Run with the instance's Python, as the dagster user, with DAGSTER_HOME and the
service environment set (the units and tasks of the dagster role do that).

    dagster-ops.py in-flight                 print the ids of the runs in progress, one a line
    dagster-ops.py wait-idle --timeout S     wait until no run is in progress (exit 3 on timeout,
                                             naming the runs still in progress)
    dagster-ops.py purge-runs --days N [--status S ...] [--dry-run]
                                             delete finished runs older than N days with their event logs
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

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
    args = parser.parse_args(argv)

    with DagsterInstance.get() as instance:
        if args.command == "in-flight":
            print("".join(run_id + "\n" for run_id in in_flight(instance)), end="")
            return 0
        if args.command == "wait-idle":
            return wait_idle(instance, args.timeout)
        if args.days < 1:
            parser.error("--days must be at least 1")
        statuses = [FINISHED[name] for name in (args.statuses or sorted(FINISHED))]
        return purge_runs(instance, args.days, statuses, args.dry_run)


if __name__ == "__main__":
    sys.exit(main())
