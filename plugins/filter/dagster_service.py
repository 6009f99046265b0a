"""How a Dagster unit restarts, stops and is limited: one policy for every server unit."""

from __future__ import annotations

import re

DOCUMENTATION = r"""
name: dagster_service_policy
author: dagsterops maintainers
version_added: "1.1.0"
short_description: The restart, stop and resource lines of a Dagster server unit
description:
  - Returns the C([Service]) lines that every long-running Dagster unit of the
    collection shares (webserver, daemon, code servers).
  - C(Restart=always) after any exit, two seconds apart, and never a start
    limit (the unit's C([Unit]) section sets C(StartLimitIntervalSec=0)), so
    a server that cannot reach its database keeps trying until it can.
  - C(KillMode=process). A stop or restart signals the server alone. The code
    servers it started for its locations shut down once their runs finish (or
    when its heartbeats stop), so a restart for new configuration never kills
    a run in progress.
  - C(KillMode=mixed) with C(kill_mode=mixed), for a Celery worker. The stop
    signal goes to the worker alone, which takes no new step and lets its steps
    in progress finish before it exits. What is left then is killed.
  - C(MemoryMax=), C(MemorySwapMax=0) and C(TasksMax=) bound the server with
    every process it starts, runs included, and C(OOMScoreAdjust=500) makes
    them the kernel's first choice when the host runs out of memory, so a
    runaway run is killed, not PostgreSQL.
options:
  _input:
    description: The limits.
    type: dict
    required: true
    suboptions:
      memory_max:
        description: Bytes with K, M, G or T, a percentage of the host's memory, or C(infinity).
        type: str
        required: true
      tasks_max:
        description: Most processes and threads, at least 64.
        type: int
        required: true
      kill_mode:
        description: C(process) or C(mixed).
        type: str
        default: process
  prefix:
    description: Put before C(memory_max) and C(tasks_max) in an error message, to name the role's variables.
    type: str
    default: ""
"""

EXAMPLES = r"""
# In a unit template:
# {% for line in {'memory_max': '40%', 'tasks_max': 4096} | dagsterops.dagster.dagster_service_policy %}
# {{ line }}
# {% endfor %}
"""

RETURN = r"""
_value:
  description: Unit-file lines, in order.
  type: list
  elements: str
"""

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - lets the module load without Ansible
    AnsibleFilterError = ValueError  # type: ignore[misc,assignment]

MEMORY_MAX = re.compile(r"^([1-9][0-9]*[KMGT]?|([1-9][0-9]?|100)%|infinity)\Z")


def limit_problem(field, value):
    """What is wrong with a value of the limit `field` (memory_max or tasks_max); None when systemd takes it.

    Shared with the code-location list (dagster_workspace), whose deployed
    entries may set their own limits."""
    if field == "memory_max":
        if not isinstance(value, str) or not MEMORY_MAX.match(value):
            return f"must be bytes with K, M, G or T, a percentage (1 to 100) or infinity, got {value!r}"
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 64:
        return f"must be an integer >= 64, got {value!r}"
    return None


def dagster_service_policy(limits, prefix=""):
    if not isinstance(limits, dict):
        raise AnsibleFilterError(f"dagster_service_policy: expects a map of limits, got {limits!r}")
    for field in ("memory_max", "tasks_max"):
        problem = limit_problem(field, limits.get(field))
        if problem:
            raise AnsibleFilterError(f"{prefix}{field}: {problem}")
    memory_max, tasks_max = limits["memory_max"], limits["tasks_max"]
    kill_mode = limits.get("kill_mode", "process")
    if kill_mode not in ("process", "mixed"):
        raise AnsibleFilterError(f"{prefix or 'dagster_service_policy: '}kill_mode: must be process or mixed, got {kill_mode!r}")
    return [
        "Restart=always",
        "RestartSec=2",
        f"KillMode={kill_mode}",
        f"MemoryMax={memory_max}",
        "MemorySwapMax=0",
        f"TasksMax={tasks_max}",
        "OOMScoreAdjust=500",
    ]


class FilterModule:
    def filters(self):
        return {"dagster_service_policy": dagster_service_policy}
