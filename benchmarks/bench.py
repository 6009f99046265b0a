#!/usr/bin/env python3
"""Wall-clock figures of a Dagster deployment with this collection.

    sudo .venv/bin/python benchmarks/bench.py [--repeat N] [--only floor,single,multi,runs]

Prints figures next to their targets; it is no test and asserts nothing about
speed (it exits non-zero only when a step fails outright, e.g. a converge or a
run). See benchmarks/README.md for what each figure means.

Sections, each repeated --repeat times (median and every sample printed):

  floor   a fresh systemd container in which a bare shell script does only what
          must be done (apt, venv, uv, the pinned bundle, dagster-webserver on
          sqlite) until /server_info answers: the reference the converge is
          compared with.
  single  molecule/default's Debian 12 host: fresh converge of playbooks/site.yml,
          converge end to the first successful run, no-op re-converge.
  runs    on the single-host container: launch-to-SUCCESS latency of one
          trivial_job (one op in the run's process) and of one example_job
          (three assets, a process each), and 20 example_job runs launched
          at once.
  multi   molecule/multihost's three hosts (db, instance, code) on a network
          of the benchmark's own: fresh converge, no-op re-converge.
  recovery  molecule/faults' host (a managed code server besides the
          webserver and the daemon): kill -9 of each unit's main process to
          the unit active and answering again.

Everything it starts is named dagsterops-bench-* and removed at the end, also
on failure or Ctrl-C. Stdlib and PyYAML only.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import os
import platform
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests/lib"))
from dagster_checks import DAEMON_HEALTH, GRPC_HEALTH, LAUNCH_RUN, RUN_STATUS  # noqa: E402 - the tests' own probes
PREFIX = "dagsterops-bench-"
LABEL = "dagsterops.bench=1"
IMAGE = "dagsterops-systemd:debian12"
SECTIONS = ("floor", "single", "runs", "multi", "recovery")

# The benchmark's own network for the three-host layout (molecule/multihost uses
# 10.213.47.0/24 and another scenario 10.213.48.0/24).
MULTI_SUBNET_PREFIX = "10.213.60."

# The uv release the role installs (roles/dagster/defaults/main.yml); the floor uses it too.
UV_VERSION = "0.13.9"

THROUGHPUT_RUNS = 20

TARGETS = {
    "single_converge_ratio": 2.0,  # fresh converge / floor median
    "noop_seconds": 10.0,  # no-op re-converge
    "run_latency_seconds": 6.0,  # launch to SUCCESS of one trivial run
    "recovery_seconds": 15.0,  # kill -9 of a unit's main process to active and answering
}


class BenchError(Exception):
    """A step failed outright (not a slow figure): the section stops."""


# --------------------------------------------------------------------------- output


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def fmt_s(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds:.1f} s"


def samples_text(values: list[float], unit: str = "s") -> str:
    return ", ".join(f"{v:.1f}" for v in values) + (f" {unit}" if values else "")


# --------------------------------------------------------------------------- processes


def sh(args: list[str], *, input_text: str | None = None, timeout: float | None = None,
       check: bool = True, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(args, input=input_text, capture_output=True, text=True, timeout=timeout, env=env,
                                cwd=cwd, check=False, stdin=None if input_text is not None else subprocess.DEVNULL)
    except subprocess.TimeoutExpired as error:
        raise BenchError(f"timed out after {timeout} s: {shlex.join(args)[:300]}") from error
    if check and result.returncode != 0:
        raise BenchError(
            f"exit {result.returncode}: {shlex.join(args)[:300]}\n"
            f"{(result.stdout or '')[-3000:]}\n{(result.stderr or '')[-3000:]}"
        )
    return result


def ansible_playbook_command() -> Path:
    for candidate in (Path(sys.executable).parent / "ansible-playbook", ROOT / ".venv/bin/ansible-playbook"):
        if candidate.exists():
            return candidate
    raise BenchError("ansible-playbook not found next to this Python nor in .venv/bin (run scripts/test.sh once)")


# --------------------------------------------------------------------------- containers

class Engine:
    """The containers and networks this run created, removed at the end."""

    def __init__(self, keep: bool = False) -> None:
        self.containers: list[str] = []
        self.networks: list[str] = []
        self.keep = keep

    @staticmethod
    def leftovers() -> tuple[list[str], list[str]]:
        containers = sh(["docker", "ps", "-a", "--filter", f"name=^{PREFIX}", "--format", "{{.Names}}"]).stdout.split()
        networks = sh(["docker", "network", "ls", "--filter", f"name=^{PREFIX}", "--format", "{{.Name}}"]).stdout.split()
        return ([c for c in containers if c.startswith(PREFIX)], [n for n in networks if n.startswith(PREFIX)])

    def remove_leftovers(self) -> None:
        containers, networks = self.leftovers()
        if containers or networks:
            progress(f"removing leftovers of an earlier benchmark run: {' '.join(containers + networks)}")
        for name in containers:
            sh(["docker", "rm", "-f", name], check=False)
        for name in networks:
            sh(["docker", "network", "rm", name], check=False)

    def create_network(self, name: str, subnet: str, gateway: str | None) -> None:
        assert name.startswith(PREFIX), name
        args = ["docker", "network", "create", "--label", LABEL, "--subnet", subnet]
        if gateway:
            args += ["--gateway", gateway]
        sh(args + [name], timeout=60)
        self.networks.append(name)

    def run(self, platform_def: dict) -> str:
        """docker run the way molecule's docker driver does for a platform of molecule.yml."""
        name = platform_def["name"]
        assert name.startswith(PREFIX), name
        args = ["docker", "run", "-d", "--name", name, "--hostname", name, "--label", LABEL]
        for cap in platform_def.get("capabilities", []):
            args += ["--cap-add", cap]
        for opt in platform_def.get("security_opts", []):
            args += ["--security-opt", opt]
        if platform_def.get("cgroupns_mode"):
            args.append(f"--cgroupns={platform_def['cgroupns_mode']}")
        for volume in platform_def.get("volumes", []):
            args += ["-v", volume]
        for tmpfs in platform_def.get("tmpfs", []):
            args += ["--tmpfs", tmpfs]
        networks = platform_def.get("networks") or []
        if networks:
            args += ["--network", networks[0]["name"]]
            if networks[0].get("ipv4_address"):
                args += ["--ip", networks[0]["ipv4_address"]]
        args.append(platform_def["image"])
        args += shlex.split(platform_def.get("command") or "/lib/systemd/systemd")
        self.containers.append(name)
        sh(args, timeout=120)
        for extra in networks[1:]:
            connect = ["docker", "network", "connect"]
            if extra.get("ipv4_address"):
                connect += ["--ip", extra["ipv4_address"]]
            sh(connect + [extra["name"], name], timeout=60)
        return name

    @staticmethod
    def wait_booted(name: str, timeout: float = 180) -> float:
        """Seconds until systemd in the container reports running (or degraded)."""
        started = time.monotonic()
        while True:
            result = sh(["docker", "exec", name, "systemctl", "is-system-running"], check=False, timeout=30)
            state = result.stdout.strip()
            if state in ("running", "degraded"):
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                if state == "starting":  # a unit still on its way; molecule would not wait at all
                    progress(f"{name}: systemd still 'starting' after {timeout} s; going on")
                    return time.monotonic() - started
                raise BenchError(f"{name}: systemd is '{state or result.stderr.strip()}' after {timeout} s")
            time.sleep(0.5)

    def remove(self, name: str) -> None:
        if name in self.containers:
            self.containers.remove(name)
            if self.keep:
                progress(f"keeping container {name} (--keep)")
                return
        sh(["docker", "rm", "-f", name], check=False, timeout=120)

    def cleanup(self) -> None:
        if self.keep and (self.containers or self.networks):
            progress(f"keeping (--keep): {' '.join(self.containers + self.networks)}")
            return
        for name in list(self.containers):
            sh(["docker", "rm", "-f", name], check=False, timeout=120)
            self.containers.remove(name)
        for name in list(self.networks):
            sh(["docker", "network", "rm", name], check=False, timeout=60)
            self.networks.remove(name)


# --------------------------------------------------------------------------- the molecule layouts


def molecule_layout(scenario: str, renames: list[tuple[str, str]], only: list[str] | None = None) -> dict:
    """Platforms, networks and inventory of a molecule scenario, renamed to the benchmark's own.

    Read from molecule/SCENARIO/molecule.yml so that the benchmark converges
    exactly what the scenario converges."""
    text = (ROOT / "molecule" / scenario / "molecule.yml").read_text()
    text = text.replace("${MOLECULE_PROJECT_DIRECTORY}", str(ROOT))
    for old, new in renames:
        text = text.replace(old, new)
    data = yaml.safe_load(text)
    platforms = [p for p in data["platforms"] if only is None or p["name"] in only]
    if not platforms:
        raise BenchError(f"molecule/{scenario}: no platform named {only}")
    for p in platforms:
        if not p["name"].startswith(PREFIX):
            raise BenchError(f"molecule/{scenario}: platform {p['name']} was not renamed")
    networks = {}
    for p in platforms:
        for net in p.get("docker_networks", []):
            ipam = (net.get("ipam_config") or [{}])[0]
            networks[net["name"]] = (ipam.get("subnet"), ipam.get("gateway"))
    inventory_src = data.get("provisioner", {}).get("inventory", {})
    group_vars = inventory_src.get("group_vars", {}) or {}
    host_vars = inventory_src.get("host_vars", {}) or {}
    all_vars = dict(group_vars.get("all", {}) or {})
    all_vars["ansible_connection"] = "community.docker.docker_api"
    inventory: dict = {"all": {"vars": all_vars, "hosts": {}, "children": {}}}
    for p in platforms:
        inventory["all"]["hosts"][p["name"]] = dict(host_vars.get(p["name"], {}) or {})
        for group in p.get("groups", []):
            inventory["all"]["children"].setdefault(group, {"hosts": {}})["hosts"][p["name"]] = {}
    for group, values in group_vars.items():
        if group != "all" and group in inventory["all"]["children"] and values:
            inventory["all"]["children"][group]["vars"] = values
    return {
        "platforms": platforms,
        "networks": networks,
        "inventory": inventory,
        "prepare": ROOT / "molecule" / scenario / "prepare.yml"
        if data.get("provisioner", {}).get("playbooks", {}).get("prepare") else None,
    }


def single_layout(name: str = f"{PREFIX}single") -> dict:
    layout = molecule_layout("default", [("dagster-aio-debian12", name)], only=[name])
    if layout["platforms"][0]["image"] != IMAGE:
        raise BenchError(f"molecule/default's Debian 12 platform is not {IMAGE}")
    return layout


def multi_layout() -> dict:
    renames = [
        ("dagster-mh-", f"{PREFIX}mh-"),
        ("dagster-multihost", f"{PREFIX}net"),
        ("10.213.47.", MULTI_SUBNET_PREFIX),
    ]
    layout = molecule_layout("multihost", renames)
    dumped = json.dumps(layout["inventory"]) + json.dumps(layout["platforms"])
    for old, _new in renames:
        if old in dumped:
            raise BenchError(f"molecule/multihost: '{old}' left after renaming")
    return layout


# --------------------------------------------------------------------------- playbooks

RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)")


class Playbooks:
    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.command = ansible_playbook_command()

    def run(self, label: str, inventory: dict, playbook: Path, timeout: float = 3600) -> dict:
        """ansible-playbook against the inventory; wall seconds, recap lines, changed count."""
        inventory_path = self.logdir / f"{label}.inventory.yml"
        inventory_path.write_text(yaml.safe_dump(inventory, sort_keys=False))
        log_path = self.logdir / f"{label}.log"
        env = dict(
            os.environ,
            PATH=f"{self.command.parent}:{os.environ.get('PATH', '')}",
            ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".ansible/collections"),
            ANSIBLE_PIPELINING="true",
            ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks",
            ANSIBLE_FORCE_COLOR="false",
            ANSIBLE_NOCOLOR="true",
            ANSIBLE_RETRY_FILES_ENABLED="false",
            # prepare.yml of molecule/multihost finds the example code through it.
            MOLECULE_PROJECT_DIRECTORY=str(ROOT),
        )
        command = [str(self.command), "-i", str(inventory_path), str(playbook)]
        started = time.monotonic()
        with open(log_path, "w") as log:
            try:
                result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                                        timeout=timeout, check=False)
            except subprocess.TimeoutExpired as error:
                raise BenchError(f"{label}: ansible-playbook timed out after {timeout} s (log: {log_path})") from error
        seconds = time.monotonic() - started
        output = log_path.read_text(errors="replace")
        recap, changed, failed = [], 0, 0
        in_recap = False
        for line in output.splitlines():
            if line.startswith("PLAY RECAP"):
                in_recap = True
                continue
            match = RECAP.match(line) if in_recap else None
            if match:
                recap.append(re.sub(r"\s+", " ", line.strip()))
                changed += int(match.group(3))
                failed += int(match.group(4)) + int(match.group(5))
        if result.returncode != 0 or failed:
            tail = "\n".join(output.splitlines()[-60:])
            raise BenchError(f"{label}: ansible-playbook exited {result.returncode} (log: {log_path})\n{tail}")
        return {"seconds": seconds, "recap": recap, "changed": changed, "log": str(log_path)}


# --------------------------------------------------------------------------- runs through GraphQL

# Runs inside the container with its own python3 (no client installed there),
# after the query strings of tests/lib/dagster_checks.py. It launches COUNT
# runs at once (one thread each), retrying a launch that fails for up to
# LAUNCH_RETRY seconds (the location may still be loading right after a
# converge), then polls until every run has finished; prints JSON.
_RUNNER_BODY = r'''
import json, sys, threading, time, urllib.error, urllib.request

URL = "http://127.0.0.1:3000/graphql"
location, job = sys.argv[1], sys.argv[2]
count, launch_retry, timeout, poll = int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}



def gql(query, variables=None):
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(URL, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        payload = json.loads(response.read().decode())
    if payload.get("errors"):
        raise RuntimeError(json.dumps(payload["errors"])[:2000])
    return payload["data"]


def launch():
    params = {
        "selector": {"repositoryLocationName": location, "repositoryName": "__repository__", "jobName": job},
        "runConfigData": {},
        "executionMetadata": {"tags": [{"key": "dagsterops/bench", "value": "1"}]},
    }
    result = gql(LAUNCH_RUN, {"params": params})["launchRun"]
    if result["__typename"] != "LaunchRunSuccess":
        raise RuntimeError(json.dumps(result)[:2000])
    return result["run"]["runId"]


def statuses(run_ids):
    """Status of each run: one runsOrError query, else one runOrError per run."""
    try:
        data = gql("{ runsOrError(filter: {runIds: %s}) { __typename ... on Runs { results { runId status } } "
                   "... on PythonError { message } } }" % json.dumps(run_ids))["runsOrError"]
        if data["__typename"] == "Runs":
            found = {run["runId"]: run["status"] for run in data["results"]}
            if set(found) >= set(run_ids):
                return found
    except Exception:
        pass
    found = {}
    for run_id in run_ids:
        run = gql(RUN_STATUS, {"runId": run_id})["runOrError"]
        found[run_id] = run.get("status", run["__typename"])
    return found


started = time.monotonic()
launched, errors = {}, []


def launch_one(index):
    deadline = time.monotonic() + launch_retry
    last = None
    while True:
        try:
            launched[index] = (launch(), time.monotonic() - started)
            return
        except (RuntimeError, OSError, urllib.error.URLError) as error:
            last = error
        if time.monotonic() >= deadline:
            errors.append(f"launch {index}: {last}")
            return
        time.sleep(0.5)


threads = [threading.Thread(target=launch_one, args=(i,)) for i in range(count)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
launch_seconds = time.monotonic() - started
if errors:
    print(json.dumps({"error": errors}))
    sys.exit(0)

run_ids = [launched[i][0] for i in range(count)]
finished, seen = {}, {run_id: [] for run_id in run_ids}
while len(finished) < count:
    now_status = statuses([r for r in run_ids if r not in finished])
    now = time.monotonic() - started
    for run_id, status in now_status.items():
        if not seen[run_id] or seen[run_id][-1] != status:
            seen[run_id].append(status)
        if status in FINISHED:
            finished[run_id] = (status, now)
    if len(finished) < count:
        if time.monotonic() - started > launch_seconds + timeout:
            print(json.dumps({"error": [f"runs not finished after {timeout} s: "
                                        + json.dumps({r: seen[r] for r in run_ids if r not in finished})]}))
            sys.exit(0)
        time.sleep(poll)

print(json.dumps({
    "launch_seconds": launch_seconds,
    "all_seconds": max(t for _s, t in finished.values()),
    "runs": [{"run_id": r, "status": finished[r][0], "seconds": finished[r][1],
              "launched_at": launched[i][1], "seen": seen[r]} for i, r in enumerate(run_ids)],
}))
'''
RUNNER = f"LAUNCH_RUN = {LAUNCH_RUN!r}\nRUN_STATUS = {RUN_STATUS!r}\n" + _RUNNER_BODY


def launch_and_wait(container: str, count: int = 1, *, launch_retry: float = 0.0, timeout: float = 600,
                    poll: float = 0.25, location: str = "example", job: str = "example_job") -> dict:
    """COUNT runs of JOB launched at once from inside the container; times measured there."""
    result = sh(
        ["docker", "exec", "-i", container, "python3", "-", location, job, str(count), str(launch_retry),
         str(timeout), str(poll)],
        input_text=RUNNER, timeout=launch_retry + timeout + 120,
    )
    try:
        data = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as error:
        raise BenchError(f"runner printed no result: {result.stdout[-2000:]}\n{result.stderr[-2000:]}") from error
    if "error" in data:
        journal = sh(["docker", "exec", container, "journalctl", "-u", "dagster-daemon", "-u", "dagster-webserver",
                      "--no-pager", "-n", "40"], check=False).stdout
        raise BenchError("; ".join(data["error"]) + "\n" + journal)
    bad = [r for r in data["runs"] if r["status"] != "SUCCESS"]
    if bad:
        raise BenchError(f"{len(bad)} of {count} runs did not succeed: {json.dumps(bad)[:2000]}")
    return data


# --------------------------------------------------------------------------- the floor


FLOOR_LOCK = ROOT / "roles/dagster/files/locks/dagster-1.13.27-default.txt"


def floor_script() -> str:
    """A bare script that reaches the end state of a single-host converge by the
    shortest path: PostgreSQL with the role and the database, the locked bundle
    byte-compiled into an environment (built while PostgreSQL installs, as
    site.yml does), dagster.yaml on PostgreSQL, the example location, and the
    webserver and the daemon as systemd units, until the webserver answers and
    the daemon runs. It does nothing the converge does not need: no checks, no
    hardening, no backups."""
    example = base64.b64encode((ROOT / "roles/dagster/files/dagster_example/__init__.py").read_bytes()).decode()
    return f"""
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_CERT=/etc/ssl/certs/ca-certificates.crt
export UV_SYSTEM_CERTS=true UV_PYTHON_DOWNLOADS=never UV_NO_PROGRESS=true
mark() {{ echo "PHASE $1 $(date +%s.%N)"; }}
mark start
apt-get update -qq
apt-get install -y -qq python3-venv >/dev/null
mark apt
# The environment builds in the background while PostgreSQL installs.
(
  python3 -m venv /opt/floor/tools
  /opt/floor/tools/bin/pip install -q uv=={UV_VERSION}
  /opt/floor/tools/bin/uv venv -q --python /usr/bin/python3 /opt/floor/venv
  /opt/floor/tools/bin/uv pip install -q --compile-bytecode --python /opt/floor/venv/bin/python \
    --require-hashes -r /root/floor-lock.txt
) >/var/log/floor-environment.log 2>&1 &
environment=$!
apt-get install -y -qq postgresql >/dev/null
runuser -u postgres -- psql -q -c "CREATE ROLE dagster LOGIN" -c "CREATE DATABASE dagster OWNER dagster"
mark postgresql
useradd --system --home-dir /var/lib/dagster --shell /usr/sbin/nologin dagster
install -d -o root -g dagster -m 0750 /var/lib/dagster
install -d -o dagster -g dagster -m 0750 /var/lib/dagster/storage
install -d -m 0755 /opt/floor/code/dagster_example
echo '{example}' | base64 -d >/opt/floor/code/dagster_example/__init__.py
cat >/var/lib/dagster/dagster.yaml <<'YAML'
storage:
  postgres:
    postgres_url: postgresql+psycopg2://dagster@/dagster?host=/run/postgresql
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
run_monitoring:
  enabled: true
local_artifact_storage:
  module: dagster.core.storage.root
  class: LocalArtifactStorage
  config: {{base_dir: /var/lib/dagster/storage}}
compute_logs:
  module: dagster.core.storage.local_compute_log_manager
  class: LocalComputeLogManager
  config: {{base_dir: /var/lib/dagster/storage/logs}}
telemetry:
  enabled: false
YAML
cat >/var/lib/dagster/workspace.yaml <<'YAML'
load_from:
  - python_module: {{module_name: dagster_example, location_name: example, working_directory: /opt/floor/code}}
YAML
chgrp dagster /var/lib/dagster/dagster.yaml /var/lib/dagster/workspace.yaml
chmod 0640 /var/lib/dagster/dagster.yaml /var/lib/dagster/workspace.yaml
for unit in webserver daemon; do
  case $unit in
    webserver) command="dagster-webserver --host 127.0.0.1 --port 3000 --workspace /var/lib/dagster/workspace.yaml" ;;
    daemon) command="dagster-daemon run --workspace /var/lib/dagster/workspace.yaml" ;;
  esac
  cat >/etc/systemd/system/floor-$unit.service <<UNIT
[Unit]
After=postgresql.service
[Service]
User=dagster
Environment=DAGSTER_HOME=/var/lib/dagster
WorkingDirectory=/var/lib/dagster
ExecStart=/opt/floor/venv/bin/$command
UNIT
done
mark configured
wait "$environment" || {{ tail -n 40 /var/log/floor-environment.log >&2; exit 1; }}
mark environment
systemctl daemon-reload
systemctl start floor-webserver.service floor-daemon.service
python3 - <<'POLL' || {{ journalctl -u floor-webserver -u floor-daemon -n 40 --no-pager >&2; exit 1; }}
import subprocess, time, urllib.request
deadline = time.monotonic() + 300
while True:
    try:
        urllib.request.urlopen("http://127.0.0.1:3000/server_info", timeout=2).read()
        break
    except OSError:
        if time.monotonic() > deadline:
            raise SystemExit("dagster-webserver did not answer within 300 s")
        time.sleep(0.2)
subprocess.run(["systemctl", "is-active", "--quiet", "floor-daemon.service"], check=True)
POLL
mark answer
"""


def bench_floor(engine: Engine, i: int, repeat: int, results: dict) -> None:
    """One sample of the floor: a fresh container, the bare script until the webserver answers."""
    script = floor_script()
    layout = single_layout(f"{PREFIX}floor")
    name = layout["platforms"][0]["name"]
    progress(f"floor {i}/{repeat}: fresh container {name} from {IMAGE}")
    engine.run(layout["platforms"][0])
    try:
        boot = engine.wait_booted(name)
        sh(["docker", "cp", str(FLOOR_LOCK), f"{name}:/root/floor-lock.txt"])
        progress(f"floor {i}/{repeat}: booted in {boot:.1f} s; bare script: apt, PostgreSQL and the locked "
                 "environment side by side, configuration, units, until the webserver answers")
        started = time.monotonic()
        # The script as an argument, not on stdin: nothing in it can read the rest of it.
        result = sh(["docker", "exec", name, "bash", "-c", script], timeout=3600)
        seconds = time.monotonic() - started
        marks = {}
        for line in result.stdout.splitlines():
            if line.startswith("PHASE "):
                _, phase, stamp = line.split()
                marks[phase] = float(stamp)
        order = ["start", "apt", "postgresql", "configured", "environment", "answer"]
        phases = ", ".join(
            f"{b} {marks[b] - marks[a]:.1f} s" for a, b in zip(order, order[1:]) if a in marks and b in marks
        )
        progress(f"floor {i}/{repeat}: {seconds:.1f} s ({phases})")
        results["floor"].append(seconds)
        results["floor_phases"].append(phases)
    finally:
        engine.remove(name)


# --------------------------------------------------------------------------- single host and runs


def reconverge(playbooks: Playbooks, step: str, label: str, inventory: dict) -> dict:
    """site.yml again on converged hosts: its time and recap, flagged when anything changed."""
    noop = playbooks.run(label, inventory, ROOT / "playbooks/site.yml")
    progress(f"{step}: no-op re-converge {noop['seconds']:.1f} s, changed={noop['changed']}")
    for line in noop["recap"]:
        print(f"    {line}", flush=True)
    if noop["changed"]:
        progress(f"{step}: NOT a no-op: changed={noop['changed']} (see {noop['log']})")
    return noop


MODULE_CALLS = 20


def module_call_seconds(playbooks: Playbooks, label: str, inventory: dict) -> float:
    """What one task costs before it does anything: ansible.builtin.ping through the
    same connection, (time of 1 + MODULE_CALLS pings - time of 1 ping) / MODULE_CALLS."""
    seconds = []
    for count in (1, 1 + MODULE_CALLS):
        playbook = playbooks.logdir / f"ping-{count}.yml"
        playbook.write_text(yaml.safe_dump([{
            "name": f"{count} module calls", "hosts": "all", "gather_facts": False,
            "tasks": [{"name": f"Ping {n}", "ansible.builtin.ping": {}} for n in range(count)],
        }], sort_keys=False))
        seconds.append(playbooks.run(f"{label}-ping-{count}", inventory, playbook)["seconds"])
    return (seconds[1] - seconds[0]) / MODULE_CALLS


def bench_single(engine: Engine, playbooks: Playbooks, i: int, rounds: int, results: dict,
                 measure_single: bool, measure_runs: bool) -> None:
    """One sample of the single host: a fresh converge, the first run, a no-op re-converge;
    the run figures on the last sample's host."""
    site = ROOT / "playbooks/site.yml"
    layout = single_layout()
    name = layout["platforms"][0]["name"]
    progress(f"single {i}/{rounds}: fresh container {name} (molecule/default's flags)")
    engine.run(layout["platforms"][0])
    try:
        boot = engine.wait_booted(name)
        progress(f"single {i}/{rounds}: booted in {boot:.1f} s; fresh converge of playbooks/site.yml")
        fresh = playbooks.run(f"single-{i}-converge", layout["inventory"], site)
        converge_end = time.monotonic()
        if measure_single:
            results["single_converge"].append(fresh["seconds"])
        progress(f"single {i}/{rounds}: fresh converge {fresh['seconds']:.1f} s; "
                 "launching example_job until SUCCESS")
        first = launch_and_wait(name, 1, launch_retry=300, timeout=600)
        first_seconds = time.monotonic() - converge_end
        if measure_single:
            results["single_first_run"].append(first_seconds)
        progress(f"single {i}/{rounds}: converge end to first successful run {first_seconds:.1f} s "
                 f"({' -> '.join(first['runs'][0]['seen'])}); no-op re-converge")
        noop = reconverge(playbooks, f"single {i}/{rounds}", f"single-{i}-reconverge", layout["inventory"])
        if measure_single:
            results["single_noop"].append(noop["seconds"])
            results["single_noop_changed"].append(noop["changed"])
            results["single_noop_recap"].extend(noop["recap"])
            per_call = module_call_seconds(playbooks, f"single-{i}", layout["inventory"])
            results["module_call"].append(per_call)
            progress(f"single {i}/{rounds}: one module call through the connection {per_call:.2f} s")
        if measure_runs and i == rounds:
            bench_runs(name, rounds, results)
    finally:
        engine.remove(name)


def bench_runs(name: str, repeat: int, results: dict) -> None:
    for job, key in (("trivial_job", "run_latency"), ("example_job", "run_latency_example")):
        for i in range(1, repeat + 1):
            progress(f"runs {i}/{repeat}: one {job}, launch to SUCCESS")
            data = launch_and_wait(name, 1, timeout=600, poll=0.2, job=job)
            run = data["runs"][0]
            progress(f"runs {i}/{repeat}: {job} {run['seconds']:.1f} s ({' -> '.join(run['seen'])})")
            results[key].append(run["seconds"])
    for i in range(1, repeat + 1):
        progress(f"runs {i}/{repeat}: {THROUGHPUT_RUNS} example_job launched at once, until all SUCCESS")
        data = launch_and_wait(name, THROUGHPUT_RUNS, timeout=1800, poll=0.5)
        seconds = data["all_seconds"]
        per_minute = THROUGHPUT_RUNS / seconds * 60
        progress(f"runs {i}/{repeat}: all {THROUGHPUT_RUNS} SUCCESS after {seconds:.1f} s "
                 f"(launched within {data['launch_seconds']:.1f} s): {per_minute:.1f} runs/min")
        results["throughput_seconds"].append(seconds)
        results["throughput_per_minute"].append(per_minute)


# --------------------------------------------------------------------------- multi host


def bench_multi(engine: Engine, playbooks: Playbooks, repeat: int, results: dict) -> None:
    site = ROOT / "playbooks/site.yml"
    for i in range(1, repeat + 1):
        layout = multi_layout()
        names = [p["name"] for p in layout["platforms"]]
        progress(f"multi {i}/{repeat}: network {', '.join(layout['networks'])} and containers {', '.join(names)}")
        try:
            for network, (subnet, gateway) in layout["networks"].items():
                engine.create_network(network, subnet, gateway)
            for platform_def in layout["platforms"]:
                engine.run(platform_def)
            boot = max(engine.wait_booted(n) for n in names)
            if layout["prepare"]:
                progress(f"multi {i}/{repeat}: booted ({boot:.1f} s); molecule/multihost/prepare.yml (not timed)")
                playbooks.run(f"multi-{i}-prepare", layout["inventory"], layout["prepare"])
            progress(f"multi {i}/{repeat}: fresh converge of playbooks/site.yml")
            fresh = playbooks.run(f"multi-{i}-converge", layout["inventory"], site)
            results["multi_converge"].append(fresh["seconds"])
            progress(f"multi {i}/{repeat}: fresh converge {fresh['seconds']:.1f} s; no-op re-converge")
            noop = reconverge(playbooks, f"multi {i}/{repeat}", f"multi-{i}-reconverge", layout["inventory"])
            results["multi_noop"].append(noop["seconds"])
            results["multi_noop_changed"].append(noop["changed"])
            results["multi_noop_recap"].extend(noop["recap"])
        finally:
            for name in names:
                engine.remove(name)
            for network in list(engine.networks):
                if not engine.keep:
                    sh(["docker", "network", "rm", network], check=False, timeout=60)
                    engine.networks.remove(network)


# --------------------------------------------------------------------------- recovery from kill -9

RECOVERY_UNITS = ("dagster-webserver.service", "dagster-daemon.service", "dagster-code-location@served.service")

# Runs inside molecule/faults' host with its own python3: kill -9 of UNIT's main
# process, then polls every 0.2 s until systemd has a new main process, the unit
# is active and it answers (the webserver /server_info; the daemon a heartbeat of
# every required daemon newer than the kill; the code server the gRPC health
# request `dagster api grpc-health-check` makes, GRPC_HEALTH of
# tests/lib/dagster_checks.py); prints the seconds as JSON.
_RECOVERY_BODY = r"""
import json, os, subprocess, sys, time, urllib.request

unit, location_python = sys.argv[1], sys.argv[2]


def out(*args):
    return subprocess.run(args, capture_output=True, text=True, check=False).stdout.strip()


def main_pid():
    return int(out("systemctl", "show", "-p", "MainPID", "--value", unit) or 0)


def answering(since):
    try:
        if unit == "dagster-webserver.service":
            urllib.request.urlopen("http://127.0.0.1:3000/server_info", timeout=2).read()
            return True
        if unit == "dagster-daemon.service":
            body = json.dumps({"query": DAEMON_HEALTH}).encode()
            request = urllib.request.Request("http://127.0.0.1:3000/graphql", data=body,
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=5) as response:
                statuses = json.loads(response.read())["data"]["instance"]["daemonHealth"]["allDaemonStatuses"]
            required = [s for s in statuses if s["required"]]
            return bool(required) and all(s["healthy"] and (s["lastHeartbeatTime"] or 0) > since for s in required)
        return subprocess.run([location_python, "-c", GRPC_HEALTH, "4000"], capture_output=True,
                              check=False).returncode == 0
    except (OSError, ValueError, KeyError, TypeError):
        return False


before = main_pid()
if not before or not answering(0):
    print(json.dumps({"error": f"{unit} is not running and answering before the kill"}))
    sys.exit(0)
killed_at = time.time()
started = time.monotonic()
os.kill(before, 9)
while True:
    pid = main_pid()
    if pid not in (0, before) and out("systemctl", "is-active", unit) == "active" and answering(killed_at):
        print(json.dumps({"seconds": time.monotonic() - started}))
        break
    if time.monotonic() - started > 120:
        print(json.dumps({"error": f"{unit} not back within 120 s: " + out("systemctl", "is-active", unit)}))
        break
    time.sleep(0.2)
"""
RECOVERY = f"GRPC_HEALTH = {GRPC_HEALTH!r}\nDAEMON_HEALTH = {DAEMON_HEALTH!r}\n" + _RECOVERY_BODY


def recovery_layout() -> dict:
    return molecule_layout("faults", [("dagster-faults", f"{PREFIX}faults")])


def bench_recovery(engine: Engine, playbooks: Playbooks, repeat: int, results: dict) -> None:
    layout = recovery_layout()
    name = layout["platforms"][0]["name"]
    progress(f"recovery: fresh container {name} (molecule/faults' host and inventory)")
    engine.run(layout["platforms"][0])
    try:
        engine.wait_booted(name)
        converge = playbooks.run("recovery-converge", layout["inventory"], ROOT / "playbooks/site.yml")
        progress(f"recovery: converged in {converge['seconds']:.1f} s; the first run loads everything once")
        launch_and_wait(name, 1, launch_retry=300, timeout=600, location="served")
        location_python = "/opt/dagster/code-locations/served/venv/bin/python"
        for i in range(1, repeat + 1):
            for unit in RECOVERY_UNITS:
                time.sleep(5)  # the previous unit's restart settles
                result = sh(["docker", "exec", "-i", name, "python3", "-", unit, location_python],
                            input_text=RECOVERY, timeout=300)
                data = json.loads(result.stdout.strip().splitlines()[-1])
                if "error" in data:
                    raise BenchError(data["error"])
                progress(f"recovery {i}/{repeat}: {unit} killed, active and answering after {data['seconds']:.1f} s")
                results["recovery"].setdefault(unit, []).append(data["seconds"])
    finally:
        engine.remove(name)


# --------------------------------------------------------------------------- report


def machine() -> dict:
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    docker = sh(["docker", "version", "--format", "{{.Server.Version}}"], check=False).stdout.strip()
    try:
        import ansible.release  # noqa: PLC0415 - the tool venv's ansible-core, for the record only

        ansible_version = ansible.release.__version__
    except ImportError:
        ansible_version = "?"
    commit = sh(["git", "-C", str(ROOT), "rev-parse", "HEAD"], check=False).stdout.strip()
    dirty = sh(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"], check=False).stdout.strip()
    return {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "commit": (commit or "?") + (" (with uncommitted changes)" if dirty else ""),
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "docker": docker or "?",
        "ansible_core": ansible_version,
        "load_start": os.getloadavg(),
    }


def role_defaults() -> dict:
    try:
        return yaml.safe_load((ROOT / "roles/dagster/defaults/main.yml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def report(results: dict, info: dict, repeat: int, selected: list[str], errors: list[str]) -> None:
    defaults = role_defaults()
    floor = median(results["floor"])
    rows = []  # figure, median, samples, target, within

    def row(figure: str, values: list[float], target: str, within: str = "", unit: str = "s",
            shown: str | None = None) -> None:
        if figure.split(":")[0] not in selected:
            return
        value = median(values)
        rows.append((figure, shown if shown is not None else ("n/a" if value is None else f"{value:.1f} {unit}"),
                     samples_text(values, unit) if values else "not run", target, within if values else ""))

    def yes_no(ok: bool) -> str:
        return "yes" if ok else "NO"

    row("floor: bare script, first command to /server_info", results["floor"], "reference")
    converge = median(results["single_converge"])
    if results["single_converge"]:
        if floor:
            ratio = converge / floor
            shown = f"{converge:.1f} s = {ratio:.2f}x floor"
            within = yes_no(ratio <= TARGETS["single_converge_ratio"])
        else:
            shown, within = f"{converge:.1f} s (floor not run)", ""
        row("single: fresh converge (site.yml)", results["single_converge"],
            f"<= {TARGETS['single_converge_ratio']:.1f}x floor", within, shown=shown)
    else:
        row("single: fresh converge (site.yml)", [], f"<= {TARGETS['single_converge_ratio']:.1f}x floor")
    noop_changed = results["single_noop_changed"]
    row("single: no-op re-converge" + (f" (changed={max(noop_changed)})" if noop_changed else ""),
        results["single_noop"], f"<= {TARGETS['noop_seconds']:.0f} s, changed=0",
        yes_no(bool(noop_changed) and median(results["single_noop"]) <= TARGETS["noop_seconds"]
               and not any(noop_changed)))
    row("single: one module call (ansible.builtin.ping)", results["module_call"], "-", shown=None
        if not results["module_call"] else f"{median(results['module_call']):.2f} s")
    row("single: converge end to first successful run", results["single_first_run"], "-")
    row("runs: trivial_job (one op, in process) launch to SUCCESS", results["run_latency"],
        f"<= {TARGETS['run_latency_seconds']:.0f} s",
        yes_no(bool(results["run_latency"]) and median(results["run_latency"]) <= TARGETS["run_latency_seconds"]))
    row("runs: example_job (3 assets, a process each) launch to SUCCESS", results["run_latency_example"], "-")
    concurrency = defaults.get("dagster_max_concurrent_runs", "?")
    row(f"runs: {THROUGHPUT_RUNS} example_job at once, until all SUCCESS", results["throughput_seconds"], "-")
    row(f"runs: throughput (max_concurrent_runs {concurrency})", results["throughput_per_minute"], "-",
        unit="runs/min")
    multi = median(results["multi_converge"])
    row("multi: fresh converge, 3 hosts (site.yml)", results["multi_converge"], "-",
        shown=None if multi is None or not floor else f"{multi:.1f} s = {multi / floor:.2f}x floor")
    multi_changed = results["multi_noop_changed"]
    row("multi: no-op re-converge" + (f" (changed={max(multi_changed)})" if multi_changed else ""),
        results["multi_noop"], "changed=0", yes_no(bool(multi_changed) and not any(multi_changed)))

    for unit in RECOVERY_UNITS:
        values = results["recovery"].get(unit, [])
        row(f"recovery: kill -9 of {unit.split('.')[0]} to active and answering", values,
            f"<= {TARGETS['recovery_seconds']:.0f} s",
            yes_no(bool(values) and max(values) <= TARGETS["recovery_seconds"]))

    load_end = os.getloadavg()
    print()
    print("## Results")
    print()
    print(f"- date: {info['date']}; kernel {info['kernel']}; {info['cores']} cores; {info['memory_gib']} GiB memory; "
          f"Docker {info['docker']}; ansible-core {info['ansible_core']}")
    print(f"- load average at start {info['load_start'][0]:.2f}, at end {load_end[0]:.2f}; "
          f"--repeat {repeat}; sections: {', '.join(selected)}")
    if "runs" in selected:
        print(f"- run queue: dequeue every {defaults.get('dagster_dequeue_interval_seconds', '?')} s, "
              f"max_concurrent_runs {concurrency} (role defaults)")
    if results["floor_phases"]:
        print(f"- floor phases: {' | '.join(results['floor_phases'])}")
    for label, key in (("single", "single_noop_recap"), ("multi", "multi_noop_recap")):
        for line in results[key]:
            print(f"- {label} no-op recap: `{line}`")
    print()
    headers = ("Figure", "Median", "Samples", "Target", "Within target")
    widths = [max(len(str(r[c])) for r in rows + [headers]) for c in range(len(headers))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(str(v).ljust(w) for v, w in zip(r, widths)) + " |")
    if errors:
        print()
        print("Failed steps (their figures are missing):")
        for error in errors:
            print(f"- {error.splitlines()[0]}")


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="samples of each figure (default 3)")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections among {','.join(SECTIONS)} (default all)")
    parser.add_argument("--keep", action="store_true", help="leave the containers and network in place (debugging)")
    parser.add_argument("--json", type=Path,
                        help="also write the figures to this file (default: benchmarks/results/DATE-COMMIT.json)")
    args = parser.parse_args()
    selected = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(selected) - set(SECTIONS))
    if unknown or not selected:
        parser.error(f"--only: unknown section(s) {', '.join(unknown) or '(none)'}; choose from {','.join(SECTIONS)}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    selected = [s for s in SECTIONS if s in selected]

    def terminate(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)

    if sh(["docker", "image", "inspect", IMAGE], check=False).returncode != 0:
        print(f"{IMAGE} is not in the local Docker engine; build it with scripts/test.sh molecule (or scripts/demo.sh)",
              file=sys.stderr)
        return 2

    info = machine()
    logdir = Path(tempfile.mkdtemp(prefix=PREFIX))
    print(f"# dagsterops.dagster benchmark ({info['date']}, commit {info['commit']})")
    print(f"{info['cores']} cores, {info['memory_gib']} GiB memory, kernel {info['kernel']}, Docker {info['docker']}, "
          f"load average {info['load_start'][0]:.2f}; sections {', '.join(selected)}, --repeat {args.repeat}"
          + (f"; playbook logs in {logdir}" if set(selected) - {"floor"} else ""), flush=True)

    results: dict = {key: [] for key in (
        "floor", "floor_phases", "single_converge", "single_first_run", "single_noop", "single_noop_changed",
        "single_noop_recap", "module_call", "run_latency", "run_latency_example", "throughput_seconds",
        "throughput_per_minute", "multi_converge", "multi_noop", "multi_noop_changed", "multi_noop_recap")}
    results["recovery"] = {}
    errors: list[str] = []
    engine = Engine(keep=args.keep)
    try:
        engine.remove_leftovers()
        try:
            playbooks = Playbooks(logdir) if {"single", "runs", "multi", "recovery"} & set(selected) else None
        except BenchError as error:
            print(error, file=sys.stderr)
            return 2
        steps = []
        # The floor and the single host take turns, sample by sample, so that
        # a change in the machine's load touches both alike.
        single = "single" in selected or "runs" in selected
        rounds = args.repeat if "single" in selected else 1
        for i in range(1, max(args.repeat if "floor" in selected else 0, rounds if single else 0) + 1):
            if "floor" in selected and i <= args.repeat:
                steps.append((f"floor {i}", lambda i=i: bench_floor(engine, i, args.repeat, results)))
            if single and i <= rounds:
                steps.append((f"single/runs {i}", lambda i=i: bench_single(
                    engine, playbooks, i, rounds, results, "single" in selected, "runs" in selected)))
        if "multi" in selected:
            steps.append(("multi", lambda: bench_multi(engine, playbooks, args.repeat, results)))
        if "recovery" in selected:
            steps.append(("recovery", lambda: bench_recovery(engine, playbooks, args.repeat, results)))
        for label, step in steps:
            try:
                step()
            except BenchError as error:
                progress(f"{label} FAILED: {error}")
                errors.append(f"{label}: {error}")
    finally:
        progress("removing the benchmark's containers and network")
        engine.cleanup()
        if not any(logdir.iterdir()):
            logdir.rmdir()

    report(results, info, args.repeat, selected, errors)
    if args.json is None:
        stamp = datetime.datetime.now().strftime("%Y-%m-%dT%H%M")
        args.json = ROOT / "benchmarks" / "results" / f"{stamp}-{info['commit'][:10]}.json"
        args.json.parent.mkdir(exist_ok=True)
    if args.json:
        print(f"figures: {args.json}")
        args.json.write_text(json.dumps({"machine": info, "repeat": args.repeat, "sections": selected,
                                         "targets": TARGETS, "results": results, "errors": errors}, indent=2))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
