"""dagster_service_policy: the restart, stop and resource lines of every server unit."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from dagster_service import dagster_service_policy, limit_problem


def test_the_policy_lines():
    assert dagster_service_policy({"memory_max": "40%", "tasks_max": 4096}) == [
        "Restart=always",
        "RestartSec=2",
        "KillMode=process",
        "MemoryMax=40%",
        "MemorySwapMax=0",
        "TasksMax=4096",
        "OOMScoreAdjust=500",
    ]


@pytest.mark.parametrize("memory_max", ["1536M", "2G", "1073741824", "100%", "1%", "infinity"])
def test_memory_limits_systemd_takes(memory_max):
    assert f"MemoryMax={memory_max}" in dagster_service_policy({"memory_max": memory_max, "tasks_max": 64})


@pytest.mark.parametrize("memory_max", ["0", "0%", "101%", "2GB", "-1G", "1.5G", "2G\nExecStartPre=/bin/sh", "", None, 2])
def test_memory_limits_refused(memory_max):
    with pytest.raises(AnsibleFilterError, match="^memory_max: must be"):
        dagster_service_policy({"memory_max": memory_max, "tasks_max": 4096})


@pytest.mark.parametrize("tasks_max", [0, 63, -1, "4096", True, None])
def test_task_limits_refused(tasks_max):
    with pytest.raises(AnsibleFilterError, match="^tasks_max: must be an integer >= 64"):
        dagster_service_policy({"memory_max": "40%", "tasks_max": tasks_max})


def test_the_prefix_names_the_roles_variable():
    with pytest.raises(AnsibleFilterError, match="^dagster_service_memory_max: must be"):
        dagster_service_policy({"memory_max": "2GB", "tasks_max": 4096}, prefix="dagster_service_")


def test_the_limit_check_is_the_one_the_policy_applies():
    # dagster_workspace checks a code location's own limits with it.
    assert limit_problem("memory_max", "768M") is None and limit_problem("tasks_max", 256) is None
    assert limit_problem("memory_max", "2GB").startswith("must be bytes")
    assert limit_problem("tasks_max", 63) == "must be an integer >= 64, got 63"


def test_kill_mode_mixed_replaces_process_in_place():
    lines = dagster_service_policy({"memory_max": "40%", "tasks_max": 4096, "kill_mode": "mixed"})
    assert lines == [
        "Restart=always",
        "RestartSec=2",
        "KillMode=mixed",
        "MemoryMax=40%",
        "MemorySwapMax=0",
        "TasksMax=4096",
        "OOMScoreAdjust=500",
    ]


def test_kill_mode_process_is_the_default_spelled_out():
    limits = {"memory_max": "40%", "tasks_max": 4096}
    assert dagster_service_policy({**limits, "kill_mode": "process"}) == dagster_service_policy(limits)


@pytest.mark.parametrize("kill_mode", ["control-group", "none", "Mixed", "", None, "mixed\nExecStartPre=/bin/sh"])
def test_other_kill_modes_are_refused(kill_mode):
    with pytest.raises(AnsibleFilterError, match="^dagster_service_policy: kill_mode: must be process or mixed"):
        dagster_service_policy({"memory_max": "40%", "tasks_max": 4096, "kill_mode": kill_mode})
    with pytest.raises(AnsibleFilterError, match="^dagster_celery_worker_kill_mode: must be process or mixed"):
        dagster_service_policy({"memory_max": "40%", "tasks_max": 4096, "kill_mode": kill_mode},
                               prefix="dagster_celery_worker_")
