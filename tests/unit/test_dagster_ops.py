"""dagster-ops.py fail-lost-runs: which runs it checks, how it tells a live worker, what it fails.

The script imports dagster, which the tool environment does not have: a small
stand-in module gives it the few names it uses. The molecule default scenario
runs it against a real instance (test_safety.py).
"""

from __future__ import annotations

import enum
import importlib.util
import os
import sys
import time
import types
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "roles/dagster/files/dagster-ops.py"


class RunStatus(enum.Enum):
    STARTING = "STARTING"
    STARTED = "STARTED"
    CANCELING = "CANCELING"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    CANCELED = "CANCELED"


@pytest.fixture(scope="module")
def ops():
    stand_in = types.ModuleType("dagster")
    stand_in.DagsterRunStatus = RunStatus
    stand_in.DagsterEventType = types.SimpleNamespace(ENGINE_EVENT="ENGINE_EVENT")
    stand_in.DagsterInstance = object
    stand_in.RunsFilter = lambda statuses: statuses
    saved = sys.modules.get("dagster")
    sys.modules["dagster"] = stand_in
    try:
        spec = importlib.util.spec_from_file_location("dagster_ops", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        if saved is None:
            del sys.modules["dagster"]
        else:
            sys.modules["dagster"] = saved
    return module


# The locations whose runs execute on the host the check runs on (from the
# dagster_local_locations filter, or a code host's servers).
HERE = {"module_here", "file_here", "code_server_here"}


def _started(pid):
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    return time.time() - time.clock_gettime(time.CLOCK_BOOTTIME) + ticks / os.sysconf("SC_CLK_TCK")


def test_a_live_process_is_the_worker_only_if_it_started_by_the_time_the_worker_logged_itself(ops):
    started = _started(os.getpid())
    assert ops.process_alive(os.getpid(), started)
    assert ops.process_alive(os.getpid(), time.time())
    # The same pid, logged well before this process began: a later process that was given the pid.
    assert not ops.process_alive(os.getpid(), started - ops.CLOCK_SLACK - 5)


def test_a_worker_that_logged_itself_before_this_boot_is_gone(ops):
    booted = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
    assert not ops.process_alive(1, booted - 60)


def test_a_process_that_does_not_exist_is_not_alive(ops):
    with open("/proc/sys/kernel/pid_max", encoding="ascii") as f:
        assert not ops.process_alive(int(f.read()) + 1, time.time())


class Entry:
    """An engine event as Dagster stores it: the text in its DagsterEvent, user_message empty."""

    def __init__(self, message, timestamp):
        self.user_message = ""
        self.dagster_event = types.SimpleNamespace(message=message)
        self.timestamp = timestamp


class Run:
    def __init__(self, run_id, location, status=RunStatus.STARTED):
        self.run_id = run_id
        self.status = status
        self.remote_job_origin = types.SimpleNamespace(location_name=location) if location else None


class Instance:
    """Runs with their workers' start events; records the runs reported failed."""

    run_monitoring_enabled = True

    def __init__(self, runs, workers, ended=()):
        self.runs = {run.run_id: run for run in runs}
        self.workers = workers
        self.ended = set(ended)
        self.failed = {}

    def get_run_records(self, statuses):
        assert statuses == [RunStatus.STARTED]
        return [types.SimpleNamespace(dagster_run=run) for run in self.runs.values()]

    def all_logs(self, run_id, of_type):
        assert of_type == "ENGINE_EVENT"
        logs = [Entry("Starting run", time.time() - 60)]
        if run_id in self.workers:
            pid, logged_at = self.workers[run_id]
            logs.append(Entry(f"Started process for run (pid: {pid}).", logged_at))
        return logs

    def get_run_by_id(self, run_id):
        run = self.runs[run_id]
        return Run(run_id, "x", RunStatus.SUCCESS) if run_id in self.ended else run

    def report_run_failed(self, run, message):
        self.failed[run.run_id] = message


def _sweep(ops, tmp_path, instance, **kwargs):
    assert ops.fail_lost_runs(instance, HERE, **kwargs) == 0
    return instance.failed


GONE = 2**22 + 1  # above any pid_max: no such process


def test_only_the_runs_of_this_hosts_locations_whose_worker_is_gone_are_failed(ops, tmp_path):
    now = time.time()
    instance = Instance(
        [Run("lost", "module_here"), Run("alive", "file_here"), Run("remote", "elsewhere"),
         Run("no-worker-yet", "code_server_here"), Run("no-origin", None), Run("ended-meanwhile", "module_here")],
        {"lost": (GONE, now), "alive": (os.getpid(), now), "remote": (GONE, now), "ended-meanwhile": (GONE, now)},
        ended={"ended-meanwhile"},
    )
    failed = _sweep(ops, tmp_path, instance)
    assert list(failed) == ["lost"]
    assert f"worker process (pid {GONE})" in failed["lost"]


def test_a_dry_run_fails_nothing(ops, tmp_path, capsys):
    instance = Instance([Run("lost", "module_here")], {"lost": (GONE, time.time())})
    assert _sweep(ops, tmp_path, instance, dry_run=True) == {}
    assert "would mark it FAILED" in capsys.readouterr().out


def test_nothing_is_checked_with_run_monitoring_off(ops, tmp_path):
    instance = Instance([Run("lost", "module_here")], {"lost": (GONE, time.time())})
    instance.run_monitoring_enabled = False
    assert _sweep(ops, tmp_path, instance) == {}


def _main(ops, monkeypatch, instance, argv):
    class Get:
        @staticmethod
        def get():
            return Get()

        def __enter__(self):
            return instance

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(ops, "DagsterInstance", Get)
    return ops.main(argv)


def test_a_code_host_checks_the_locations_it_names(ops, monkeypatch):
    now = time.time()
    instance = Instance([Run("here", "served_here"), Run("there", "module_here")],
                        {"here": (GONE, now), "there": (GONE, now)})
    assert _main(ops, monkeypatch, instance, ["fail-lost-runs", "--location", "served_here", "--location", "x"]) == 0
    assert list(instance.failed) == ["here"]


def test_the_check_needs_the_locations_named(ops, monkeypatch):
    with pytest.raises(SystemExit):
        _main(ops, monkeypatch, Instance([], {}), ["fail-lost-runs"])
