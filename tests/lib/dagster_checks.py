"""Checks the molecule verifiers share: GraphQL calls made from inside a test
host, run launching and waiting, unit journals for failure messages, and
playbook runs against the scenario's inventory."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

PROJECT = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).resolve().parents[2]))
# ${NAME}, ${NAME:-default} and $$ (one dollar sign), the forms molecule reads.
_MOLECULE_VARIABLE = re.compile(r"\$\$|\$\{(\w+)(?::-([^}]*))?\}")


def molecule_text(text, environ):
    """A molecule.yml's text with its variables read as molecule reads them, from `environ`."""
    def value(match):
        if match[0] == "$$":
            return "$"
        return environ.get(match[1]) or (match[2] or "")
    return _MOLECULE_VARIABLE.sub(value, text)


def scenario_config(scenario_dir):
    """A scenario's molecule.yml as molecule reads it, with this process's environment."""
    return yaml.safe_load(molecule_text((Path(scenario_dir) / "molecule.yml").read_text(), os.environ))

# Runs inside the test host with its own python3, so no client is installed there.
_GRAPHQL_CLIENT = r"""
import base64, json, sys, urllib.request
url, body, timeout = sys.argv[1], base64.b64decode(sys.argv[2]), float(sys.argv[3])
request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
with urllib.request.urlopen(request, timeout=timeout) as response:
    sys.stdout.write(response.read().decode())
"""

# The request `dagster api grpc-health-check` makes, without importing Dagster
# first (that import takes seconds on a loaded machine): a script for
# `LOCATION_VENV/bin/python -c GRPC_HEALTH PORT`, exit 0 when the server serves.
GRPC_HEALTH = (
    "import sys, grpc; from grpc_health.v1 import health_pb2, health_pb2_grpc; "
    "stub = health_pb2_grpc.HealthStub(grpc.insecure_channel('127.0.0.1:' + sys.argv[1])); "
    "status = stub.Check(health_pb2.HealthCheckRequest(service='DagsterApi'), timeout=2).status; "
    "raise SystemExit(0 if status == health_pb2.HealthCheckResponse.SERVING else 1)"
)


LAUNCH_RUN = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PipelineNotFoundError { message }
  }
}
"""

RUN_STATUS = """
query Run($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { runId status tags { key value } }
  }
}
"""

LOCATIONS = """
{
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on RepositoryLocation { repositories { name jobs { name } assetNodes { assetKey { path } } } }
          ... on PythonError { message }
        }
      }
    }
  }
}
"""

# Every daemon's health and last heartbeat, as the UI's daemon page reads them.
DAEMON_HEALTH = """
{ instance { daemonHealth { allDaemonStatuses { daemonType healthy required lastHeartbeatTime } } } }
"""

FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}


def journal(host, unit, lines=60):
    """The tail of a unit's journal, for failure messages."""
    return host.run(f"journalctl -u {unit} --no-pager -n {lines}").stdout


def graphql(host, query, variables=None, port=3000, address="127.0.0.1", path_prefix="", call_timeout=30):
    """The data of one GraphQL call, made from inside the host; fails after `call_timeout` seconds without an answer."""
    url = f"http://{address}:{port}{path_prefix}/graphql"
    body = base64.b64encode(json.dumps({"query": query, "variables": variables or {}}).encode()).decode()
    script = base64.b64encode(_GRAPHQL_CLIENT.encode()).decode()
    result = host.run(
        f"python3 -c \"import base64;exec(base64.b64decode('{script}'))\" {url} {body} {call_timeout}"
    )
    assert result.rc == 0, f"GraphQL call to {url} failed: {result.stderr}\n{journal(host, 'dagster-webserver')}"
    payload = json.loads(result.stdout)
    assert "errors" not in payload, payload["errors"]
    return payload["data"]


def locations(host, **kwargs):
    data = graphql(host, LOCATIONS, **kwargs)["workspaceOrError"]
    assert data["__typename"] == "Workspace", data
    return {entry["name"]: entry for entry in data["locationEntries"]}


def launch_run(host, location, job, repository="__repository__", tags=None, run_config=None, **kwargs):
    params = {
        "selector": {"repositoryLocationName": location, "repositoryName": repository, "jobName": job},
        "runConfigData": run_config or {},
        "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]},
    }
    result = graphql(host, LAUNCH_RUN, {"params": params}, **kwargs)["launchRun"]
    assert result["__typename"] == "LaunchRunSuccess", result
    return result["run"]["runId"]


def run_status(host, run_id, **kwargs):
    run = graphql(host, RUN_STATUS, {"runId": run_id}, **kwargs)["runOrError"]
    assert run["__typename"] == "Run", run
    return run


def wait_for_run(host, run_id, timeout=180, **kwargs):
    """Poll until the run finishes; returns (final status, seconds waited, statuses seen)."""
    started = time.monotonic()
    seen = []
    while True:
        status = run_status(host, run_id, **kwargs)["status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in FINISHED:
            return status, time.monotonic() - started, seen
        if time.monotonic() - started > timeout:
            raise AssertionError(
                f"run {run_id} still {status} after {timeout} s (seen {seen})\n"
                f"{journal(host, 'dagster-daemon')}"
            )
        time.sleep(1)


RUNS_WITH_STATUS = """
query Runs($statuses: [RunStatus!]) {
  runsOrError(filter: {statuses: $statuses}) { __typename ... on Runs { results { runId } } }
}
"""

RELOAD_LOCATION = """
mutation Reload($name: String!) {
  reloadRepositoryLocation(repositoryLocationName: $name) {
    __typename
    ... on WorkspaceLocationEntry { name loadStatus }
    ... on PythonError { message }
  }
}
"""


def run_ids_with_status(host, statuses, **kwargs):
    """The ids of the runs whose status is one of `statuses` (e.g. ["STARTED"])."""
    runs = graphql(host, RUNS_WITH_STATUS, {"statuses": list(statuses)}, **kwargs)["runsOrError"]
    assert runs["__typename"] == "Runs", runs
    return [run["runId"] for run in runs["results"]]


def reload_location(host, name, **kwargs):
    """Have the webserver reload a code location, as the UI's Reload button does; its entry's typename."""
    return graphql(host, RELOAD_LOCATION, {"name": name}, **kwargs)["reloadRepositoryLocation"]["__typename"]


def wait_for(predicate, timeout, step=1.0, message=""):
    """Poll predicate() until it returns a true value, and return that value.

    For a state a test waits to reach (a service started, a location loaded),
    never for a check under test to pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {message() if callable(message) else message}")
        time.sleep(step)


def exposure_score(host, unit):
    """The overall exposure level `systemd-analyze security UNIT` gives (0.0 safest, 10.0 most exposed)."""
    last = host.check_output(f"systemd-analyze security {unit} | tail -1")
    # "→ Overall exposure level for dagster-webserver.service: 1.9 OK 🙂"
    return float(last.split(":", 1)[1].split()[0])


def ansible_playbook(playbook, extra_vars=None, *args, env=None):
    """Run a playbook against the scenario's inventory, as molecule runs the converge.

    Returns (exit code, stdout + stderr, seconds)."""
    return finish_playbook(start_playbook(playbook, extra_vars, *args, env=env))


def psql(host, sql, database="dagster"):
    """A query as the postgres superuser on the database host; the rows as text."""
    return host.check_output(f"sudo -u postgres psql -d {database} -tAc \"{sql}\"").strip()


def instance_config(host, home="/var/lib/dagster"):
    """The instance's dagster.yaml on the host, parsed."""
    return yaml.safe_load(host.file(f"{home}/dagster.yaml").content_string)


def run_events(db, run_id, event_types):
    """The run's stored events of those types, oldest first, parsed, read from PostgreSQL."""
    types = "','".join(event_types)
    rows = psql(db, f"SELECT event FROM event_logs WHERE run_id='{run_id}' "
                    f"AND dagster_event_type IN ('{types}') ORDER BY id").splitlines()
    return [json.loads(row) for row in rows]


def run_messages(db, run_id, event_types=("PIPELINE_FAILURE", "ENGINE_EVENT")):
    """The messages of the run's events of those types (a run's failure is stored as
    PIPELINE_FAILURE), oldest first: why a run failed, in the words of the process that
    failed it."""
    return [(event.get("dagster_event") or {}).get("message", "") for event in run_events(db, run_id, event_types)]


def materialized_text(db, run_id, label="hostname"):
    """The text metadata entries `label` of the run's asset materializations, read from PostgreSQL."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            # Stored as metadata_entries: [{label: ..., entry_data: {text: ...}}].
            if node.get("label") == label and isinstance(node.get("entry_data"), dict):
                found.append(node["entry_data"].get("text"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for event in run_events(db, run_id, ["ASSET_MATERIALIZATION"]):
        walk(event)
    return found


def wait_until_started(host, run_id, timeout=60, **kwargs):
    """Poll until the run is STARTED (its worker is running)."""
    deadline = time.monotonic() + timeout
    while True:
        status = run_status(host, run_id, **kwargs)["status"]
        if status == "STARTED":
            return
        assert status not in FINISHED and time.monotonic() < deadline, (
            f"run {run_id} is {status}, not STARTED\n{journal(host, 'dagster-daemon')}")
        time.sleep(1)


def pause_config(seconds):
    """Run config of the example's pause_job."""
    return {"ops": {"pause": {"config": {"seconds": seconds}}}}


def pause_job_worker_pids(db, run_id):
    """The worker process ids that the example's pause_job logged when it started and when it finished."""
    messages = psql(db, f"SELECT event FROM event_logs WHERE run_id='{run_id}' AND event LIKE '%pause_job worker pid%'")
    logged = {"started": [], "finished": []}
    for pid, moment in re.findall(r"pause_job worker pid (\d+) (started|finished)", messages):
        logged[moment].append(pid)
    return logged


def start_held_run(instance, location, release_file, db=None, timeout=120):
    """A pause_job run of the example on LOCATION that ends once RELEASE_FILE exists (on the
    host where it runs), launched through INSTANCE's webserver once STARTED.

    Returns (run id, the worker's pid as the job logged it); DB is the database host (INSTANCE by default)."""
    config = {"ops": {"pause": {"config": {"seconds": 600, "release_file": release_file}}}}
    run_id = launch_run(instance, location, "pause_job", run_config=config)
    wait_until_started(instance, run_id, timeout=timeout)
    pids = wait_for(lambda: pause_job_worker_pids(db or instance, run_id)["started"], 60,
                    message=f"no worker pid logged by run {run_id}")
    return run_id, pids[0]


def last_oneshot_run(host, unit):
    """(start, end) of the last run of a oneshot service, in microseconds of the host's monotonic clock."""
    out = host.check_output(f"systemctl show -p ExecMainStartTimestampMonotonic -p InactiveEnterTimestampMonotonic {unit}")
    times = dict(line.split("=", 1) for line in out.splitlines())
    return int(times["ExecMainStartTimestampMonotonic"]), int(times["InactiveEnterTimestampMonotonic"])


_ARGV_SAMPLER = r"""
import os, sys, time
needles = []
if len(sys.argv) > 2:
    with open(sys.argv[2], "rb") as f:
        needles = [line for line in f.read().splitlines() if line]
seen, checked = set(), set()
with open(sys.argv[1], "a") as out:
    while True:
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        argv = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
                except OSError:
                    continue
                if argv and argv not in seen:
                    seen.add(argv)
                    out.write(argv + "\n")
                    out.flush()
                # A process whose environment holds a needle: its command line, marked (never the needle).
                if needles and argv and (pid, argv) not in checked:
                    checked.add((pid, argv))
                    try:
                        with open(f"/proc/{pid}/environ", "rb") as f:
                            environ = f.read()
                    except OSError:
                        continue
                    for index, needle in enumerate(needles):
                        if needle in environ:
                            out.write(f"{ENVIRON_MARK}{index} {argv}\n")
                            out.flush()
        time.sleep(INTERVAL)
"""
# Short enough to see the short-lived processes of a small deployment (a pg_dump
# of a few runs lives about 0.1 s), at a few percent of a core.
ARGV_SAMPLE_INTERVAL = 0.02
ARGV_SAMPLES = "/root/argv-samples.txt"
ARGV_NEEDLES = "/root/argv-sampler-needles"
# The prefix of a sampled line whose process held one of the needles in its environment.
ENVIRON_MARK = "environ-holds-needle: "


def start_argv_sampler(host, environ_needles=()):
    """Record every distinct command line on the host, sampled every ARGV_SAMPLE_INTERVAL s, until stop_argv_sampler.

    With environ_needles, the command line of each process whose environment holds
    one of them is recorded again, after ENVIRON_MARK and the needle's index in
    environ_needles (the needle itself is not)."""
    code = _ARGV_SAMPLER.replace("ENVIRON_MARK", repr(ENVIRON_MARK)).replace("INTERVAL", repr(ARGV_SAMPLE_INTERVAL))
    code = base64.b64encode(code.encode()).decode()
    host.run("systemctl stop dagsterops-argv-sampler.service")
    host.check_output(f"rm -f {ARGV_SAMPLES} {ARGV_NEEDLES}")
    needles = ""
    if environ_needles:
        lines = base64.b64encode("".join(f"{needle}\n" for needle in environ_needles).encode()).decode()
        host.check_output(f"umask 077 && echo {lines} | base64 -d > {ARGV_NEEDLES}")
        needles = f" {ARGV_NEEDLES}"
    host.check_output(
        "systemd-run --collect --unit=dagsterops-argv-sampler /usr/bin/python3 -c "
        f"\"import base64; exec(base64.b64decode('{code}'))\" {ARGV_SAMPLES}{needles}")
    deadline = time.monotonic() + 10
    while host.run(f"test -s {ARGV_SAMPLES}").rc != 0:
        assert time.monotonic() < deadline, "the command-line sampler did not start"
        time.sleep(0.2)


def stop_argv_sampler(host):
    """The command lines recorded since start_argv_sampler."""
    host.check_output("systemctl stop dagsterops-argv-sampler.service")
    host.check_output(f"rm -f {ARGV_NEEDLES}")
    return host.check_output(f"cat {ARGV_SAMPLES}")


def locked_pins(lock, python_version):
    """name==version of every package the lock file `lock` installs on a Linux host with this Python."""
    from packaging.markers import Marker, default_environment

    environment = {**default_environment(), "sys_platform": "linux", "platform_system": "Linux",
                   "os_name": "posix", "platform_python_implementation": "CPython",
                   "implementation_name": "cpython", "python_version": python_version,
                   "python_full_version": f"{python_version}.0"}
    pins = set()
    for line in Path(lock).read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            requirement, _, marker = line.rstrip(" \\").partition(";")
            if marker.strip() and not Marker(marker).evaluate(environment):
                continue
            name, version = requirement.strip().split("==")
            pins.add(f"{name.lower().replace('_', '-')}=={version}")
    return pins


def frozen_packages(host, python, uv="/opt/dagster/tools/bin/uv"):
    """name==version of every package in the environment of `python` on `host`, as `uv pip freeze` lists them."""
    frozen = host.check_output(f"{uv} pip freeze --python {python}")
    return {line.lower().replace("_", "-") for line in frozen.splitlines()}


# The python3 of each Debian release the collection supports.
DEBIAN_PYTHON = {"12": "3.11", "13": "3.13"}


def debian_release(host):
    """The major Debian release of `host`: "12" or "13"."""
    return host.file("/etc/debian_version").content_string.strip().split(".")[0]


def python_version(host, python):
    """major.minor of `python` on `host`."""
    return host.check_output(f"{python} -c 'import sys;print(\"%d.%d\" % sys.version_info[:2])'")


def start_playbook(playbook, extra_vars=None, *args, env=None):
    """ansible_playbook in the background: (the process, its output file, the start time).

    finish_playbook waits for it and returns what ansible_playbook returns."""
    inventory = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "inventory"
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), str(playbook), *args]
    if extra_vars:
        command += ["-e", json.dumps(extra_vars)]
    environment = dict(
        os.environ,
        ANSIBLE_PIPELINING="true",
        ANSIBLE_COLLECTIONS_PATH=str(PROJECT / ".ansible/collections"),
        ANSIBLE_FORCE_COLOR="false",
        ANSIBLE_NOCOLOR="true",
        **(env or {}),
    )
    output = tempfile.TemporaryFile(mode="w+")
    process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, text=True, env=environment)
    return process, output, time.monotonic()


def finish_playbook(started):
    """Wait for a playbook from start_playbook: (exit code, output, seconds)."""
    process, output, began = started
    returncode = process.wait()
    output.seek(0)
    text = output.read()
    output.close()
    return returncode, text, time.monotonic() - began
