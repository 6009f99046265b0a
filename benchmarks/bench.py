#!/usr/bin/env python3
"""Wall-clock figures of a Dagster deployment with this collection.

    sudo .venv/bin/python benchmarks/bench.py [--repeat N] [--only floor,single,multi,runs,recovery,celery]
                                              [--connections ssh,docker]

Prints figures next to their targets; it is no test and asserts nothing about
speed (it exits non-zero only when a step fails outright, e.g. a converge or a
run). See benchmarks/README.md for what each figure means.

Every container starts from dagsterops-bench-ssh:debianNN, built first (not
timed) from the scenarios' dagsterops-systemd:debianNN with openssh-server and a
user deploy with passwordless sudo, and with no apt lists, as a fresh host. The
converges go over each connection of --connections, ssh first:

  ssh     the measured path, with the settings README.md recommends to users:
          ansible_connection ssh as deploy, become through sudo, pipelining
          on, ssh_args "-o ControlMaster=auto -o ControlPersist=60s", a key
          made for this invocation; the targets apply to it. Each playbook
          starts without an open connection (the previous one's master
          connections are closed first, not timed).
  docker  community.docker.docker_api (the molecule scenarios use molecule's
          community.docker.docker); printed as a second row for comparison.

Sections, each repeated --repeat times (median and every sample printed):

  floor   a fresh container in which a bare shell script does only what must
          be done (apt, venv, uv, the pinned bundle, dagster-webserver on
          PostgreSQL) until /server_info answers: the reference the converge is
          compared with.
  single  molecule/default's Debian 12 host, once per connection: fresh
          converge of playbooks/site.yml, converge end to the first successful
          run, no-op re-converge, the cost of one module call. Each round runs
          a floor sample, then a single-host sample over each connection.
  runs    on the last round's single-host container of the first connection:
          launch-to-SUCCESS latency of one trivial_job (one op in the run's
          process) and of one example_job (three assets, a process each), and
          20 example_job runs launched at once.
  multi   molecule/multihost's three hosts (db, instance, code) on a network
          of the benchmark's own, once per connection in each repeat: fresh
          converge, no-op re-converge.
  recovery  molecule/faults' host (a managed code server besides the
          webserver and the daemon), converged over the first connection:
          kill -9 of each unit's main process to the unit active and answering.
  celery  molecule/celery's five hosts (db, broker, code, worker1, worker2) on the
          benchmark's network, converged once over the first connection, the
          queued coordinator at 4 runs at once: runs per minute of 20 six_steps
          runs (six independent 3 s steps each) with worker1 alone (worker2's
          unit stopped), then with both workers, and the ratio.

Everything it starts is named dagsterops-bench-* and removed at the end, also
on failure or Ctrl-C; the two dagsterops-bench-ssh images stay (a rebuild then
comes from Docker's cache). Stdlib and PyYAML only; ssh and ssh-keygen on the
controller for the ssh connection.
"""

from __future__ import annotations

import argparse
import base64
import copy
import datetime
import json
import os
import platform
import re
import shlex
import shutil
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
from dagster_checks import (  # noqa: E402 - the tests' own probes and molecule.yml reading
    DAEMON_HEALTH, GRPC_HEALTH, LAUNCH_RUN, RUN_STATUS, molecule_text)
PREFIX = "dagsterops-bench-"
LABEL = "dagsterops.bench=1"
IMAGE = "dagsterops-systemd:debian12"
SECTIONS = ("floor", "single", "runs", "multi", "recovery", "celery")
CONNECTIONS = ("ssh", "docker")

# The base image of a molecule platform -> the benchmark's image built from it
# with sshd and the user deploy (ssh_images()); every container runs from these.
SSH_IMAGES = {
    "dagsterops-systemd:debian12": f"{PREFIX}ssh:debian12",
    "dagsterops-systemd:debian13": f"{PREFIX}ssh:debian13",
}
SSH_USER = "deploy"
# What README.md recommends to users in ansible.cfg ([ssh_connection] ssh_args; pipelining too).
SSH_ARGS = "-o ControlMaster=auto -o ControlPersist=60s"
SSH_COMMON_ARGS = "-o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no"

# The benchmark's own network for the layouts of several hosts, one at a time
# (molecule/multihost uses 10.213.47.0/24, molecule/celery 10.213.51.0/24, and
# their scenarios may run meanwhile).
NET_NAME = f"{PREFIX}net"
NET_SUBNET_PREFIX = "10.213.60."

# The uv release the role installs (roles/dagster/defaults/main.yml); the floor uses it too.
UV_VERSION = "0.13.9"

THROUGHPUT_RUNS = 20

# The celery section: THROUGHPUT_RUNS runs of the job, each of six independent
# steps sleeping CELERY_STEP_SECONDS, at most CELERY_MAX_CONCURRENT_RUNS at once
# (the queued coordinator), so that the workers and not the 2 cores bound them.
CELERY_LOCATION, CELERY_JOB = "celery", "six_steps"
CELERY_STEPS = 6
CELERY_STEP_SECONDS = 3
CELERY_MAX_CONCURRENT_RUNS = 4
CELERY_WORKER_UNIT = "dagster-celery-worker@celery.service"

# The converge targets apply to the ssh connection; the docker rows are for comparison.
TARGETS = {
    "single_converge_ratio": 1.3,  # fresh single-host converge over ssh / floor median
    "noop_seconds": 8.0,  # no-op single-host re-converge over ssh (and changed=0)
    "multi_converge_ratio": 1.3,  # fresh 3-host converge over ssh / single-host converge over ssh (medians)
    "run_latency_seconds": 3.0,  # launch to SUCCESS of one trivial run
    "recovery_seconds": 15.0,  # kill -9 of a unit's main process to active and answering
}
TARGET_CONNECTION = "ssh"


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
        networks = sh(["docker", "network", "ls", "--filter", f"name=^{PREFIX}",
                       "--format", "{{.Name}}"]).stdout.split()
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

    @staticmethod
    def address(platform_def: dict) -> str:
        """The container's IPv4 address on its first network (the platform's first, else its only one)."""
        name = platform_def["name"]
        networks = json.loads(sh(["docker", "inspect", "-f", "{{json .NetworkSettings.Networks}}", name],
                                 timeout=60).stdout or "{}") or {}
        wanted = (platform_def.get("networks") or [{}])[0].get("name")
        entry = networks.get(wanted) if wanted else next(iter(networks.values()), None)
        address = (entry or {}).get("IPAddress")
        if not address:
            raise BenchError(f"{name}: no IPv4 address on {wanted or 'its network'}: {json.dumps(networks)[:500]}")
        return address

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


# --------------------------------------------------------------------------- the images

# The scenario's base image as a host users have: sshd (enabled, started at
# boot) and a user deploy with a home, bash and passwordless sudo. Without
# package lists, and with a list directory as old as the base image's, so that
# the converge refreshes them as on a fresh host; machine-id empty as in the base.
SSH_DOCKERFILE = """\
FROM {base}
RUN set -eu; export DEBIAN_FRONTEND=noninteractive; \\
    packages="openssh-server openssh-sftp-server"; \\
    command -v sudo >/dev/null || packages="$packages sudo"; \\
    apt-get update -qq; \\
    apt-get install -y -qq --no-install-recommends $packages >/dev/null; \\
    rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb /var/cache/apt/*.bin; \\
    touch -d '2000-01-01 00:00:00' /var/lib/apt/lists; \\
    useradd --create-home --shell /bin/bash {user}; \\
    echo '{user} ALL=(ALL:ALL) NOPASSWD: ALL' >/etc/sudoers.d/{user}; \\
    chmod 0440 /etc/sudoers.d/{user}; \\
    visudo -cqf /etc/sudoers.d/{user}; \\
    systemctl enable ssh; \\
    : >/etc/machine-id
"""


def ssh_images(bases: list[str], logdir: Path) -> None:
    """docker build of dagsterops-bench-ssh:debianNN from each base image (Dockerfile in
    the log directory and on stdin, no build context); instant from Docker's cache."""
    for base in bases:
        tag = SSH_IMAGES[base]
        dockerfile = SSH_DOCKERFILE.format(base=base, user=SSH_USER)
        (logdir / f"{tag.split(':')[-1]}.Dockerfile").write_text(dockerfile)
        started = time.monotonic()
        sh(["docker", "build", "--force-rm", "--label", LABEL, "-t", tag, "-"], input_text=dockerfile, timeout=1800)
        progress(f"image {tag} from {base}: {time.monotonic() - started:.1f} s (not timed)")


# --------------------------------------------------------------------------- the molecule layouts


# The container settings every platform of a scenario gets (every scenario creates its
# containers with molecule/shared/create.yml): the base, the platform's own keys over it,
# these lists of the platform added to the base's (the filter dagsterops_platform there).
SHARED_PLATFORM = ROOT / "molecule/shared/platform.yml"
sys.path.insert(0, str(ROOT / "molecule/shared/filter_plugins"))
from dagsterops_platform import dagsterops_platform as platform_over_base  # noqa: E402 - create.yml's own filter


def molecule_layout(scenario: str, renames: list[tuple[str, str]], only: list[str] | None = None) -> dict:
    """Platforms, networks and inventory of a molecule scenario, renamed to the benchmark's own.

    Read from molecule/SCENARIO/molecule.yml (and molecule/shared/platform.yml when
    the scenario creates its containers with molecule/shared/create.yml) so that
    the benchmark converges exactly what the scenario converges."""
    # The project's directory and nothing else from the environment: each scenario's
    # own default release, whatever DAGSTEROPS_DEBIAN says.
    text = molecule_text((ROOT / "molecule" / scenario / "molecule.yml").read_text(),
                         {"MOLECULE_PROJECT_DIRECTORY": str(ROOT)})
    for old, new in renames:
        text = text.replace(old, new)
    data = yaml.safe_load(text)
    create = str((data.get("provisioner", {}).get("playbooks", {}) or {}).get("create") or "")
    if not create.endswith("shared/create.yml"):
        raise BenchError(f"molecule/{scenario}: containers not created with molecule/shared/create.yml")
    base = yaml.safe_load(SHARED_PLATFORM.read_text()) or {}
    platforms = [platform_over_base(p, base) for p in data["platforms"] if only is None or p["name"] in only]
    if not platforms:
        raise BenchError(f"molecule/{scenario}: no platform named {only}")
    for p in platforms:
        if not p["name"].startswith(PREFIX):
            raise BenchError(f"molecule/{scenario}: platform {p['name']} was not renamed")
        if p["image"] not in SSH_IMAGES:
            raise BenchError(f"molecule/{scenario}: platform {p['name']}'s image {p['image']} is none of "
                             f"{', '.join(SSH_IMAGES)}")
        # The scenario's image, then the benchmark's own built from it with sshd (ssh_images()).
        p["base_image"], p["image"] = p["image"], SSH_IMAGES[p["image"]]
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
    if layout["platforms"][0]["base_image"] != IMAGE:
        raise BenchError(f"molecule/default's Debian 12 platform is not {IMAGE}")
    return layout


def network_layout(scenario: str, host_prefix: str, network: str, subnet_prefix: str) -> dict:
    """A scenario of several hosts on a network of its own, moved to the benchmark's:
    hosts HOST_PREFIX* renamed dagsterops-bench-SHORT-*, the network NET_NAME, its
    addresses SUBNET_PREFIX* to NET_SUBNET_PREFIX* (the scenario may run meanwhile)."""
    short = host_prefix.removeprefix("dagster-")
    renames = [(host_prefix, f"{PREFIX}{short}"), (network, NET_NAME), (subnet_prefix, NET_SUBNET_PREFIX)]
    layout = molecule_layout(scenario, renames)
    dumped = json.dumps(layout["inventory"]) + json.dumps(layout["platforms"])
    for old, _new in renames:
        if old in dumped:
            raise BenchError(f"molecule/{scenario}: '{old}' left after renaming")
    return layout


def multi_layout() -> dict:
    return network_layout("multihost", "dagster-mh-", "dagster-multihost", "10.213.47.")


def group_hosts(layout: dict, group: str) -> list[str]:
    return sorted(layout["inventory"]["all"]["children"].get(group, {}).get("hosts", {}))


def celery_layout() -> dict:
    """molecule/celery's five hosts, the instance's host with the queued coordinator at
    CELERY_MAX_CONCURRENT_RUNS runs at once (host vars of the benchmark's own)."""
    layout = network_layout("celery", "dagster-celery-", "dagster-celery", "10.213.51.")
    for name in group_hosts(layout, "dagster_instance"):
        layout["inventory"]["all"]["hosts"][name].update(
            dagster_run_coordinator="queued", dagster_max_concurrent_runs=CELERY_MAX_CONCURRENT_RUNS)
    return layout


# --------------------------------------------------------------------------- the ssh connection


class Ssh:
    """The key of this invocation, the hosts' logins with it, and the control sockets
    of Ansible's master connections (a directory of this invocation's own)."""

    def __init__(self, logdir: Path) -> None:
        for tool in ("ssh", "ssh-keygen"):
            if sh(["sh", "-c", f"command -v {tool}"], check=False).returncode != 0:
                raise BenchError(f"{tool} not found: the ssh connection needs the OpenSSH client")
        self.key = logdir / "id_ed25519"
        self.control_dir = logdir / "ssh-control"
        self.control_dir.mkdir(mode=0o700)
        sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "dagsterops-bench", "-f", str(self.key)])

    def host_vars(self, address: str) -> dict:
        """A host's connection over ssh, as a user's inventory has it (pipelining and ssh_args: Playbooks.run)."""
        return {
            "ansible_connection": "ssh",
            "ansible_host": address,
            "ansible_user": SSH_USER,
            "ansible_become_method": "ansible.builtin.sudo",
            "ansible_ssh_private_key_file": str(self.key),
            "ansible_ssh_common_args": SSH_COMMON_ARGS,
        }

    def authorize(self, name: str) -> None:
        """The public key into the container's /home/deploy/.ssh/authorized_keys (0600, directory 0700)."""
        home = f"/home/{SSH_USER}"
        sh(["docker", "exec", "-i", name, "sh", "-c",
            f"set -e; install -d -o {SSH_USER} -g {SSH_USER} -m 0700 {home}/.ssh; "
            f"cat >{home}/.ssh/authorized_keys; chown {SSH_USER}:{SSH_USER} {home}/.ssh/authorized_keys; "
            f"chmod 0600 {home}/.ssh/authorized_keys"],
           input_text=self.key.with_name(self.key.name + ".pub").read_text(), timeout=60)

    def wait_login(self, name: str, address: str, timeout: float = 120) -> float:
        """Seconds until sshd lets deploy in with the key and sudo works, on a connection of its
        own (no control socket: the converge opens its master connection itself)."""
        started = time.monotonic()
        command = ["ssh", "-i", str(self.key), "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
                   "-o", "ControlMaster=no", "-o", "ControlPath=none", "-o", "LogLevel=ERROR",
                   *shlex.split(SSH_COMMON_ARGS), f"{SSH_USER}@{address}", "sudo", "-n", "true"]
        while True:
            result = sh(command, check=False, timeout=30)
            if result.returncode == 0:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise BenchError(f"{name}: no ssh login as {SSH_USER}@{address} after {timeout} s: "
                                 f"{(result.stderr or result.stdout).strip()[-500:]}")
            time.sleep(0.5)

    @staticmethod
    def record(hosts: dict[str, str], since: float) -> str:
        """What each host's journal says of a playbook's connections since the epoch second SINCE
        (read after the playbook, not timed): the ssh logins of deploy and its sudo commands by
        target user; the proof that the playbook went over ssh as deploy with become."""
        parts = []
        for host, address in hosts.items():
            journal = sh(["docker", "exec", host, "journalctl", "--no-pager", "-q", "-o", "cat",
                          f"--since=@{since:.3f}"], check=False, timeout=120).stdout
            logins = len(re.findall(rf"Accepted publickey for {SSH_USER} from", journal))
            targets: dict[str, int] = {}
            for user in re.findall(rf"^\s*{SSH_USER} : .*?USER=(\S+) ; COMMAND=", journal, re.MULTILINE):
                targets[user] = targets.get(user, 0) + 1
            sudo = ", ".join(f"{count} as {user}" for user, count in sorted(targets.items(), key=lambda t: -t[1]))
            parts.append(f"{host} ({address}) {logins} ssh login(s) of {SSH_USER}, "
                         f"sudo by {SSH_USER}: {sudo or 'none'}")
        return "; ".join(parts)

    def close_masters(self) -> None:
        """Ends the master connections ControlPersist keeps open, so that the next playbook
        starts without a connection, as when run anew later; also before containers go."""
        for socket in sorted(self.control_dir.iterdir()):
            sh(["ssh", "-o", f"ControlPath={socket}", "-O", "exit", f"{SSH_USER}@localhost"], check=False, timeout=15)
            socket.unlink(missing_ok=True)


def connect(playbooks: Playbooks, layout: dict, connection: str) -> tuple[dict, str]:
    """The inventory of a booted layout for the connection; for ssh each container gets the key
    and is waited for until sshd lets deploy in (not timed). Returns it and a progress note."""
    if connection == "docker":
        return layout["inventory"], "connection community.docker.docker_api"
    if playbooks.ssh is None:
        raise BenchError("the ssh connection was not set up")
    inventory = copy.deepcopy(layout["inventory"])
    inventory["all"]["vars"].pop("ansible_connection", None)
    addresses = {}
    for platform_def in layout["platforms"]:
        addresses[platform_def["name"]] = Engine.address(platform_def)
        playbooks.ssh.authorize(platform_def["name"])
    waited = max(playbooks.ssh.wait_login(name, address) for name, address in addresses.items())
    for name, address in addresses.items():
        inventory["all"]["hosts"][name].update(playbooks.ssh.host_vars(address))
    return inventory, (f"ssh as {SSH_USER}@{', '.join(addresses.values())} with sudo, "
                       f"login accepted after {waited:.1f} s (not timed)")


# --------------------------------------------------------------------------- playbooks

RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)")


class Playbooks:
    def __init__(self, logdir: Path, ssh: Ssh | None = None) -> None:
        self.logdir = logdir
        self.command = ansible_playbook_command()
        self.ssh = ssh

    def close_connections(self) -> None:
        if self.ssh is not None:
            self.ssh.close_masters()

    def run(self, label: str, inventory: dict, playbook: Path, timeout: float = 3600) -> dict:
        """ansible-playbook against the inventory; wall seconds, recap lines, changed count.
        Every run starts without an open ssh connection (not timed)."""
        inventory_path = self.logdir / f"{label}.inventory.yml"
        inventory_path.write_text(yaml.safe_dump(inventory, sort_keys=False))
        log_path = self.logdir / f"{label}.log"
        self.close_connections()
        env = dict(
            os.environ,
            PATH=f"{self.command.parent}:{os.environ.get('PATH', '')}",
            ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".ansible/collections"),
            # The settings README.md recommends over ssh ([ssh_connection] pipelining and ssh_args),
            # and a control socket directory of this invocation's own.
            ANSIBLE_PIPELINING="true",
            ANSIBLE_SSH_ARGS=SSH_ARGS,
            ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks",
            ANSIBLE_FORCE_COLOR="false",
            ANSIBLE_NOCOLOR="true",
            ANSIBLE_RETRY_FILES_ENABLED="false",
            # prepare.yml of molecule/multihost finds the example code through it.
            MOLECULE_PROJECT_DIRECTORY=str(ROOT),
        )
        if self.ssh is not None:
            env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = str(self.ssh.control_dir)
        command = [str(self.command), "-i", str(inventory_path), str(playbook)]
        ssh_hosts = {host: host_vars["ansible_host"] for host, host_vars in inventory["all"]["hosts"].items()
                     if (host_vars or {}).get("ansible_connection") == "ssh"}
        since = time.time()
        started = time.monotonic()
        with open(log_path, "w") as log:
            try:
                result = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                                        timeout=timeout, check=False)
            except subprocess.TimeoutExpired as error:
                raise BenchError(f"{label}: ansible-playbook timed out after {timeout} s (log: {log_path})") from error
        seconds = time.monotonic() - started
        connection_record = self.ssh.record(ssh_hosts, since) if self.ssh is not None and ssh_hosts else ""
        if connection_record:
            with open(log_path, "a") as log:
                log.write(f"\n# dagsterops-bench, from the hosts' journals during this playbook: {connection_record}\n")
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
        return {"seconds": seconds, "recap": recap, "changed": changed, "log": str(log_path),
                "connection_record": connection_record}


# --------------------------------------------------------------------------- runs through GraphQL

# Runs inside the container with its own python3 (no client installed there),
# after the query strings of tests/lib/dagster_checks.py. It launches COUNT
# runs at once (one thread each), retrying a launch that fails for up to
# LAUNCH_RETRY seconds (the location may still be loading right after a
# converge), with the run config given as JSON, then polls until every run has
# finished; prints JSON.
_RUNNER_BODY = r'''
import json, sys, threading, time, urllib.error, urllib.request

URL = "http://127.0.0.1:3000/graphql"
location, job = sys.argv[1], sys.argv[2]
count, launch_retry, timeout, poll = int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
run_config = json.loads(sys.argv[7])
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
        "runConfigData": run_config,
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
                    poll: float = 0.25, location: str = "example", job: str = "example_job",
                    run_config: dict | None = None) -> dict:
    """COUNT runs of JOB launched at once from inside the container; times measured there."""
    result = sh(
        ["docker", "exec", "-i", container, "python3", "-", location, job, str(count), str(launch_retry),
         str(timeout), str(poll), json.dumps(run_config or {})],
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
    progress(f"floor {i}/{repeat}: fresh container {name} from {layout['platforms'][0]['image']}")
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
    same connection and with become, as site.yml's tasks,
    (time of 1 + MODULE_CALLS pings - time of 1 ping) / MODULE_CALLS."""
    seconds = []
    for count in (1, 1 + MODULE_CALLS):
        playbook = playbooks.logdir / f"ping-{count}.yml"
        playbook.write_text(yaml.safe_dump([{
            "name": f"{count} module calls", "hosts": "all", "gather_facts": False, "become": True,
            "tasks": [{"name": f"Ping {n}", "ansible.builtin.ping": {}} for n in range(count)],
        }], sort_keys=False))
        seconds.append(playbooks.run(f"{label}-ping-{count}", inventory, playbook)["seconds"])
    return (seconds[1] - seconds[0]) / MODULE_CALLS


def bench_single(engine: Engine, playbooks: Playbooks, i: int, rounds: int, connection: str, results: dict,
                 measure_single: bool, measure_runs: bool) -> None:
    """One sample of the single host over the connection: a fresh converge, the first run,
    a no-op re-converge, one module call; the run figures on the host when measure_runs."""
    site = ROOT / "playbooks/site.yml"
    layout = single_layout()
    name = layout["platforms"][0]["name"]
    step = f"single {i}/{rounds} ({connection})"
    progress(f"{step}: fresh container {name} from {layout['platforms'][0]['image']} (molecule/default's flags)")
    engine.run(layout["platforms"][0])
    try:
        boot = engine.wait_booted(name)
        inventory, note = connect(playbooks, layout, connection)
        progress(f"{step}: booted in {boot:.1f} s; {note}; fresh converge of playbooks/site.yml")
        fresh = playbooks.run(f"single-{i}-{connection}-converge", inventory, site)
        converge_end = time.monotonic()
        if measure_single:
            results["single_converge"][connection].append(fresh["seconds"])
        if fresh["connection_record"]:
            progress(f"{step}: {fresh['connection_record']}")
        progress(f"{step}: fresh converge {fresh['seconds']:.1f} s; launching example_job until SUCCESS")
        first = launch_and_wait(name, 1, launch_retry=300, timeout=600)
        first_seconds = time.monotonic() - converge_end
        if measure_single:
            results["single_first_run"][connection].append(first_seconds)
        progress(f"{step}: converge end to first successful run {first_seconds:.1f} s "
                 f"({' -> '.join(first['runs'][0]['seen'])}); no-op re-converge")
        noop = reconverge(playbooks, step, f"single-{i}-{connection}-reconverge", inventory)
        if measure_single:
            results["single_noop"][connection].append(noop["seconds"])
            results["single_noop_changed"][connection].append(noop["changed"])
            results["single_noop_recap"][connection].extend(noop["recap"])
            per_call = module_call_seconds(playbooks, f"single-{i}-{connection}", inventory)
            results["module_call"][connection].append(per_call)
            progress(f"{step}: one module call through the connection {per_call:.2f} s")
        if measure_runs:
            results["runs_host"] = f"{name}, converged over {connection}"
            bench_runs(name, rounds, results)
    finally:
        playbooks.close_connections()
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
        seconds, per_minute = throughput(name, f"runs {i}/{repeat}")
        results["throughput_seconds"].append(seconds)
        results["throughput_per_minute"].append(per_minute)


def throughput(name: str, step: str, **kwargs) -> tuple[float, float]:
    """THROUGHPUT_RUNS runs launched at once (launch_and_wait's JOB and run config), until all
    are SUCCESS: seconds from the first launch to the last SUCCESS, and runs per minute."""
    job = kwargs.get("job", "example_job")
    progress(f"{step}: {THROUGHPUT_RUNS} {job} launched at once, until all SUCCESS")
    data = launch_and_wait(name, THROUGHPUT_RUNS, timeout=1800, poll=0.5, **kwargs)
    seconds = data["all_seconds"]
    per_minute = THROUGHPUT_RUNS / seconds * 60
    progress(f"{step}: all {THROUGHPUT_RUNS} SUCCESS after {seconds:.1f} s "
             f"(launched within {data['launch_seconds']:.1f} s): {per_minute:.1f} runs/min")
    return seconds, per_minute


# --------------------------------------------------------------------------- multi host


def bench_multi(engine: Engine, playbooks: Playbooks, i: int, repeat: int, connection: str, results: dict) -> None:
    """One sample of the three-host layout over the connection: fresh converge, no-op re-converge."""
    site = ROOT / "playbooks/site.yml"
    layout = multi_layout()
    step = f"multi {i}/{repeat} ({connection})"
    try:
        inventory = start_layout(engine, playbooks, layout, connection, step)
        if layout["prepare"]:
            progress(f"{step}: molecule/multihost/prepare.yml (not timed)")
            playbooks.run(f"multi-{i}-{connection}-prepare", inventory, layout["prepare"])
        progress(f"{step}: fresh converge of playbooks/site.yml")
        fresh = playbooks.run(f"multi-{i}-{connection}-converge", inventory, site)
        results["multi_converge"][connection].append(fresh["seconds"])
        if fresh["connection_record"]:
            progress(f"{step}: {fresh['connection_record']}")
        progress(f"{step}: fresh converge {fresh['seconds']:.1f} s; no-op re-converge")
        noop = reconverge(playbooks, step, f"multi-{i}-{connection}-reconverge", inventory)
        results["multi_noop"][connection].append(noop["seconds"])
        results["multi_noop_changed"][connection].append(noop["changed"])
        results["multi_noop_recap"][connection].extend(noop["recap"])
    finally:
        remove_layout(engine, playbooks, layout)


def start_layout(engine: Engine, playbooks: Playbooks, layout: dict, connection: str, step: str) -> dict:
    """A layout of several hosts: its networks and containers, booted and reachable over the
    connection (not timed); returns the inventory."""
    names = [p["name"] for p in layout["platforms"]]
    progress(f"{step}: network {', '.join(layout['networks'])} and containers {', '.join(names)}")
    for network, (subnet, gateway) in layout["networks"].items():
        engine.create_network(network, subnet, gateway)
    for platform_def in layout["platforms"]:
        engine.run(platform_def)
    boot = max(engine.wait_booted(n) for n in names)
    inventory, note = connect(playbooks, layout, connection)
    progress(f"{step}: booted ({boot:.1f} s); {note}")
    return inventory


def remove_layout(engine: Engine, playbooks: Playbooks, layout: dict) -> None:
    playbooks.close_connections()
    for platform_def in layout["platforms"]:
        engine.remove(platform_def["name"])
    for network in list(engine.networks):
        if not engine.keep:
            sh(["docker", "network", "rm", network], check=False, timeout=60)
            engine.networks.remove(network)


# --------------------------------------------------------------------------- celery workers


def celery_steps(seconds: float) -> dict:
    """The run config of six_steps: each step sleeps SECONDS."""
    return {"ops": {f"step_{n}": {"config": {"seconds": seconds}} for n in range(1, CELERY_STEPS + 1)}}


def worker_unit(host: str, action: str) -> None:
    """systemctl ACTION of the Celery worker's unit on HOST (docker exec); after a start,
    waits until Celery logs the worker ready."""
    since = time.time()
    sh(["docker", "exec", host, "systemctl", action, CELERY_WORKER_UNIT], timeout=900)
    deadline = time.monotonic() + 180
    while action == "start":
        journal = sh(["docker", "exec", host, "journalctl", "-u", CELERY_WORKER_UNIT, "--no-pager", "-q", "-o", "cat",
                      f"--since=@{since:.3f}"], check=False, timeout=60).stdout
        if re.search(r"celery@\S+ ready\.", journal):
            return
        if time.monotonic() > deadline:
            raise BenchError(f"{host}: {CELERY_WORKER_UNIT} not ready 180 s after its start:\n{journal[-2000:]}")
        time.sleep(0.5)


def bench_celery(engine: Engine, playbooks: Playbooks, repeat: int, connection: str, results: dict) -> None:
    """molecule/celery's layout converged once; then, --repeat times, THROUGHPUT_RUNS runs of
    six_steps with worker1 alone (worker2's unit stopped) and with both workers."""
    layout = celery_layout()
    instance = group_hosts(layout, "dagster_instance")[0]
    workers = group_hosts(layout, "dagster_celery_worker")
    if len(workers) != 2:
        raise BenchError(f"molecule/celery: two workers expected, found {workers}")
    try:
        inventory = start_layout(engine, playbooks, layout, connection, f"celery ({connection})")
        progress(f"celery ({connection}): fresh converge of playbooks/site.yml")
        converge = playbooks.run(f"celery-{connection}-converge", inventory, ROOT / "playbooks/site.yml")
        playbooks.close_connections()
        results["celery_converge"][connection].append(converge["seconds"])
        if converge["connection_record"]:
            progress(f"celery ({connection}): {converge['connection_record']}")
        progress(f"celery ({connection}): converged in {converge['seconds']:.1f} s; "
                 "the first run loads everything once (not timed)")
        job = {"location": CELERY_LOCATION, "job": CELERY_JOB}
        launch_and_wait(instance, 1, launch_retry=300, timeout=600, run_config=celery_steps(0), **job)
        results["celery_host"] = f"{instance}, converged over {connection}"
        for i in range(1, repeat + 1):
            for count, action in ((1, "stop"), (2, "start")):
                worker_unit(workers[1], action)
                seconds, per_minute = throughput(
                    instance, f"celery {i}/{repeat}: {count} worker(s)", run_config=celery_steps(CELERY_STEP_SECONDS),
                    **job)
                results["celery_seconds"][str(count)].append(seconds)
                results["celery_per_minute"][str(count)].append(per_minute)
            ratio = results["celery_per_minute"]["2"][-1] / results["celery_per_minute"]["1"][-1]
            results["celery_ratio"].append(ratio)
            progress(f"celery {i}/{repeat}: two workers / one: {ratio:.2f}x")
    finally:
        remove_layout(engine, playbooks, layout)


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


def bench_recovery(engine: Engine, playbooks: Playbooks, repeat: int, connection: str, results: dict) -> None:
    layout = recovery_layout()
    name = layout["platforms"][0]["name"]
    progress(f"recovery: fresh container {name} from {layout['platforms'][0]['image']} "
             "(molecule/faults' host and inventory)")
    engine.run(layout["platforms"][0])
    try:
        engine.wait_booted(name)
        inventory, note = connect(playbooks, layout, connection)
        progress(f"recovery: {note}; converge of playbooks/site.yml")
        converge = playbooks.run(f"recovery-{connection}-converge", inventory, ROOT / "playbooks/site.yml")
        playbooks.close_connections()
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
        playbooks.close_connections()
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


def connection_settings(connections: list[str], playbooks: Playbooks | None) -> dict:
    """How each connection of this invocation reaches the hosts, for the output and the JSON."""
    settings = {}
    for connection in connections:
        if connection == "ssh":
            settings["ssh"] = {
                "ansible_connection": "ssh", "ansible_user": SSH_USER, "become_method": "ansible.builtin.sudo",
                "pipelining": True, "ssh_args": SSH_ARGS, "ssh_common_args": SSH_COMMON_ARGS,
                "control_path_dir": str(playbooks.ssh.control_dir) if playbooks and playbooks.ssh else None,
            }
        else:
            settings["docker"] = {"ansible_connection": "community.docker.docker_api", "ansible_user": "root",
                                  "pipelining": True}
    return settings


def report(results: dict, info: dict, repeat: int, selected: list[str], connections: list[str],
           images: list[str], errors: list[str]) -> None:
    defaults = role_defaults()
    floor = median(results["floor"])
    rows = []  # figure, median, samples, target, within

    def row(figure: str, values: list[float], target: str, within: str = "", unit: str = "s",
            shown: str | None = None) -> None:
        if figure.split(":")[0].split(" ")[0] not in selected:
            return
        value = median(values)
        rows.append((figure, shown if shown is not None else ("n/a" if value is None else f"{value:.1f} {unit}"),
                     samples_text(values, unit) if values else "not run", target, within if values else ""))

    def yes_no(ok: bool) -> str:
        return "yes" if ok else "NO"

    def ratio_row(figure: str, values: list[float], reference: float | None, name: str, target: float | None,
                  ) -> None:
        """The median as a ratio to a reference median; judged against the target when there is one."""
        value = median(values)
        target_text = "-" if target is None else f"<= {target:.1f}x {name}"
        if value is None:
            row(figure, values, target_text)
        elif reference:
            ratio = value / reference
            row(figure, values, target_text, "" if target is None else yes_no(ratio <= target),
                shown=f"{value:.1f} s = {ratio:.2f}x {name}")
        else:
            row(figure, values, target_text, shown=f"{value:.1f} s ({name} not run)")

    def noop_row(section: str, connection: str, seconds_target: float | None) -> None:
        values, changed = results[f"{section}_noop"][connection], results[f"{section}_noop_changed"][connection]
        figure = f"{section} ({connection}): no-op re-converge" + (f" (changed={max(changed)})" if changed else "")
        if seconds_target is None:
            row(figure, values, "changed=0", yes_no(bool(changed) and not any(changed)))
        else:
            row(figure, values, f"<= {seconds_target:.0f} s, changed=0",
                yes_no(bool(changed) and median(values) <= seconds_target and not any(changed)))

    def judged(connection: str, target: float) -> float | None:
        return target if connection == TARGET_CONNECTION else None

    row("floor: bare script, first command to /server_info", results["floor"], "reference")
    for connection in connections:
        ratio_row(f"single ({connection}): fresh converge (site.yml)", results["single_converge"][connection],
                  floor, "floor", judged(connection, TARGETS["single_converge_ratio"]))
    for connection in connections:
        noop_row("single", connection, judged(connection, TARGETS["noop_seconds"]))
    for connection in connections:
        values = results["module_call"][connection]
        row(f"single ({connection}): one module call (ansible.builtin.ping, become)", values, "-",
            shown=None if not values else f"{median(values):.2f} s")
    for connection in connections:
        row(f"single ({connection}): converge end to first successful run",
            results["single_first_run"][connection], "-")
    row("runs: trivial_job (one op, in process) launch to SUCCESS", results["run_latency"],
        f"<= {TARGETS['run_latency_seconds']:.0f} s",
        yes_no(bool(results["run_latency"]) and median(results["run_latency"]) <= TARGETS["run_latency_seconds"]))
    row("runs: example_job (3 assets, a process each) launch to SUCCESS", results["run_latency_example"], "-")
    concurrency = defaults.get("dagster_max_concurrent_runs", "?")
    row(f"runs: {THROUGHPUT_RUNS} example_job at once, until all SUCCESS", results["throughput_seconds"], "-")
    row(f"runs: throughput (max_concurrent_runs {concurrency})", results["throughput_per_minute"], "-",
        unit="runs/min")
    for connection in connections:
        ratio_row(f"multi ({connection}): fresh converge, 3 hosts (site.yml)", results["multi_converge"][connection],
                  median(results["single_converge"][connection]), "single",
                  judged(connection, TARGETS["multi_converge_ratio"]))
    for connection in connections:
        noop_row("multi", connection, None)

    for unit in RECOVERY_UNITS:
        values = results["recovery"].get(unit, [])
        row(f"recovery: kill -9 of {unit.split('.')[0]} to active and answering", values,
            f"<= {TARGETS['recovery_seconds']:.0f} s",
            yes_no(bool(values) and max(values) <= TARGETS["recovery_seconds"]))
    if connections:  # over the first connection only
        row(f"celery ({connections[0]}): fresh converge, 5 hosts (site.yml)",
            results["celery_converge"][connections[0]], "-")
    celery_runs = f"{THROUGHPUT_RUNS} {CELERY_JOB} ({CELERY_STEPS} x {CELERY_STEP_SECONDS} s steps)"
    for count, workers in (("1", "1 worker"), ("2", "2 workers")):
        row(f"celery: {celery_runs}, {workers}, until all SUCCESS", results["celery_seconds"][count], "-")
        row(f"celery: throughput, {workers}", results["celery_per_minute"][count], "-", unit="runs/min")
    row("celery: throughput, 2 workers / 1 worker", results["celery_ratio"], "-", unit="x",
        shown=None if not results["celery_ratio"] else f"{median(results['celery_ratio']):.2f}x")

    load_end = os.getloadavg()
    print()
    print("## Results")
    print()
    print(f"- date: {info['date']}; kernel {info['kernel']}; {info['cores']} cores; {info['memory_gib']} GiB memory; "
          f"Docker {info['docker']}; ansible-core {info['ansible_core']}")
    print(f"- load average at start {info['load_start'][0]:.2f}, at end {load_end[0]:.2f}; "
          f"--repeat {repeat}; sections: {', '.join(selected)}"
          + (f"; connections: {', '.join(connections)}" if set(selected) - {"floor"} else ""))
    if set(selected) & {"single", "runs", "multi", "recovery", "celery"}:
        for connection in connections:
            if connection == "ssh":
                print(f"- ssh: ansible_connection ssh as {SSH_USER}, become through sudo, pipelining on, "
                      f"ssh_args `{SSH_ARGS}`, ssh_common_args `{SSH_COMMON_ARGS}`, a key of this invocation; "
                      "each playbook starts without an open connection")
            else:
                print("- docker: ansible_connection community.docker.docker_api as root, pipelining on")
    if set(selected) & {"single", "multi"}:
        print(f"- the converge targets apply to the {TARGET_CONNECTION} rows" if TARGET_CONNECTION in connections
              else f"- no {TARGET_CONNECTION} rows: the converge targets (over {TARGET_CONNECTION}) are not judged")
    if images:
        print(f"- every container from {', '.join(images)} (sshd and the user {SSH_USER}, no apt lists)")
    if "runs" in selected:
        print(f"- run queue: dequeue every {defaults.get('dagster_dequeue_interval_seconds', '?')} s, "
              f"max_concurrent_runs {concurrency} (role defaults); runs on {results.get('runs_host') or '-'}")
    if "recovery" in selected and connections:
        print(f"- recovery: converged over {connections[0]}")
    if "celery" in selected:
        print(f"- celery: queued coordinator, max_concurrent_runs {CELERY_MAX_CONCURRENT_RUNS}, dequeue every "
              f"{defaults.get('dagster_dequeue_interval_seconds', '?')} s; worker concurrency 2 (role default); "
              f"runs on {results.get('celery_host') or '-'}")
    if results["floor_phases"]:
        print(f"- floor phases: {' | '.join(results['floor_phases'])}")
    for label, key in (("single", "single_noop_recap"), ("multi", "multi_noop_recap")):
        for connection in connections:
            for line in results[key][connection]:
                print(f"- {label} ({connection}) no-op recap: `{line}`")
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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="samples of each figure (default 3)")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections among {','.join(SECTIONS)} (default all)")
    parser.add_argument("--connections", default=",".join(CONNECTIONS),
                        help=f"comma-separated connections among {','.join(CONNECTIONS)} (default both, "
                             "ssh first whatever the order given); the single and multi sections converge over "
                             "each, runs, recovery and celery use the first")
    parser.add_argument("--multi-connections",
                        help="the connections of the multi section alone, among those of --connections "
                             "(default the same); the three hosts take about six minutes a sample")
    parser.add_argument("--keep", action="store_true",
                        help="leave the containers, the network and the ssh key in place (debugging)")
    parser.add_argument("--json", type=Path,
                        help="also write the figures to this file (default: benchmarks/results/DATE-COMMIT.json)")
    args = parser.parse_args()
    selected = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(selected) - set(SECTIONS))
    if unknown or not selected:
        parser.error(f"--only: unknown section(s) {', '.join(unknown) or '(none)'}; choose from {','.join(SECTIONS)}")
    connections = [c.strip() for c in args.connections.split(",") if c.strip()]
    unknown = sorted(set(connections) - set(CONNECTIONS))
    if unknown or not connections:
        parser.error(f"--connections: unknown connection(s) {', '.join(unknown) or '(none)'}; "
                     f"choose from {','.join(CONNECTIONS)}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    selected = [s for s in SECTIONS if s in selected]
    connections = [c for c in CONNECTIONS if c in connections]
    multi_connections = connections
    if args.multi_connections is not None:
        multi_connections = [c.strip() for c in args.multi_connections.split(",") if c.strip()]
        if not multi_connections or set(multi_connections) - set(connections):
            parser.error(f"--multi-connections: choose among the --connections ({','.join(connections)})")
        multi_connections = [c for c in connections if c in multi_connections]
    if not set(selected) & {"single", "multi"}:
        connections = connections[:1]  # runs, recovery and celery converge over the first only
    converging = set(selected) & {"single", "runs", "multi", "recovery", "celery"}

    def terminate(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)

    # The base images the selected sections' platforms name; each becomes a dagsterops-bench-ssh image.
    try:
        layouts = []
        if set(selected) & {"floor", "single", "runs"}:
            layouts.append(single_layout())
        if "multi" in selected:
            layouts.append(multi_layout())
        if "recovery" in selected:
            layouts.append(recovery_layout())
        if "celery" in selected:
            layouts.append(celery_layout())
    except BenchError as error:
        print(error, file=sys.stderr)
        return 2
    bases = sorted({p["base_image"] for layout in layouts for p in layout["platforms"]})
    for base in bases:
        if sh(["docker", "image", "inspect", base], check=False).returncode != 0:
            print(f"{base} is not in the local Docker engine; build it with scripts/test.sh molecule "
                  "(or scripts/demo.sh)", file=sys.stderr)
            return 2
    images = [SSH_IMAGES[base] for base in bases]

    info = machine()
    logdir = Path(tempfile.mkdtemp(prefix=PREFIX))
    print(f"# dagsterops.dagster benchmark ({info['date']}, commit {info['commit']})")
    print(f"{info['cores']} cores, {info['memory_gib']} GiB memory, kernel {info['kernel']}, Docker {info['docker']}, "
          f"load average {info['load_start'][0]:.2f}; sections {', '.join(selected)}, --repeat {args.repeat}"
          + (f", connections {', '.join(connections)}" if converging else "")
          + f"; images, playbook logs and inventories in {logdir}", flush=True)

    per_connection = ("single_converge", "single_first_run", "single_noop", "single_noop_changed",
                      "single_noop_recap", "module_call", "multi_converge", "multi_noop", "multi_noop_changed",
                      "multi_noop_recap", "celery_converge")
    results: dict = {key: [] for key in (
        "floor", "floor_phases", "run_latency", "run_latency_example", "throughput_seconds", "throughput_per_minute")}
    results.update({key: {connection: [] for connection in connections} for key in per_connection})
    results["recovery"] = {}
    results["runs_host"] = None
    results.update(celery_seconds={"1": [], "2": []}, celery_per_minute={"1": [], "2": []}, celery_ratio=[],
                   celery_host=None)
    errors: list[str] = []
    engine = Engine(keep=args.keep)
    playbooks = None
    try:
        engine.remove_leftovers()
        try:
            ssh = Ssh(logdir) if converging and "ssh" in connections else None
            playbooks = Playbooks(logdir, ssh) if converging else None
            ssh_images(bases, logdir)
        except BenchError as error:
            print(error, file=sys.stderr)
            return 2
        if playbooks and playbooks.ssh:
            progress(f"ssh: key {playbooks.ssh.key}, control sockets in {playbooks.ssh.control_dir}; "
                     f"pipelining on, ssh_args {SSH_ARGS}")
        steps = []
        # The floor and the single host over each connection take turns, sample
        # by sample, so that a change in the machine's load touches all alike.
        single = "single" in selected or "runs" in selected
        rounds = args.repeat if "single" in selected else 1
        for i in range(1, max(args.repeat if "floor" in selected else 0, rounds if single else 0) + 1):
            if "floor" in selected and i <= args.repeat:
                steps.append((f"floor {i}", lambda i=i: bench_floor(engine, i, args.repeat, results)))
            if not single or i > rounds:
                continue
            for connection in connections:
                # The runs on the last round's host of the first connection; --only runs converges only that one.
                runs_here = "runs" in selected and i == rounds and connection == connections[0]
                if "single" in selected or runs_here:
                    steps.append((f"single/runs {i} ({connection})",
                                  lambda i=i, c=connection, r=runs_here: bench_single(
                                      engine, playbooks, i, rounds, c, results, "single" in selected, r)))
        if "multi" in selected:
            for i in range(1, args.repeat + 1):
                for connection in multi_connections:
                    steps.append((f"multi {i} ({connection})", lambda i=i, c=connection: bench_multi(
                        engine, playbooks, i, args.repeat, c, results)))
        if "recovery" in selected:
            steps.append((f"recovery ({connections[0]})",
                          lambda: bench_recovery(engine, playbooks, args.repeat, connections[0], results)))
        if "celery" in selected:
            steps.append((f"celery ({connections[0]})",
                          lambda: bench_celery(engine, playbooks, args.repeat, connections[0], results)))
        for label, step in steps:
            try:
                step()
            except BenchError as error:
                progress(f"{label} FAILED: {error}")
                errors.append(f"{label}: {error}")
    finally:
        progress("removing the benchmark's containers and network")
        if playbooks:
            playbooks.close_connections()
        engine.cleanup()
        if playbooks and playbooks.ssh and not args.keep:
            # Nothing it opens is left; the public key stays with the inventories that name it.
            playbooks.ssh.key.unlink(missing_ok=True)
            shutil.rmtree(playbooks.ssh.control_dir, ignore_errors=True)
        if not any(logdir.iterdir()):
            logdir.rmdir()

    report(results, info, args.repeat, selected, connections, images, errors)
    if args.json is None:
        stamp = datetime.datetime.now().strftime("%Y-%m-%dT%H%M")
        args.json = ROOT / "benchmarks" / "results" / f"{stamp}-{info['commit'][:10]}.json"
        args.json.parent.mkdir(exist_ok=True)
    if args.json:
        print(f"figures: {args.json}")
        args.json.write_text(json.dumps({
            "machine": info, "repeat": args.repeat, "sections": selected, "connections": connections,
            "connection_settings": connection_settings(connections if converging else [], playbooks),
            "images": images, "targets": TARGETS, "targets_connection": TARGET_CONNECTION, "results": results,
            "errors": errors}, indent=2))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
