"""Checks of the inputs that end up in unit files, directories the roles own and the accounts services run as."""

from __future__ import annotations

import posixpath
import re

DOCUMENTATION = r"""
name: dagster_unit_values
author: dagsterops maintainers
version_added: "0.3.0"
short_description: Check values that the roles write into systemd unit files, directories and accounts
description:
  - C(dagster_unit_values) checks a map of variable name to value (a string, or a
    list of strings checked one by one as C(NAME[INDEX])). A value must be a
    non-empty single line without C(%) (a systemd specifier), quotes,
    C(\), C($) or C(;), which systemd would expand, unquote or split on a
    unit's line. With C(kind=word) (the default) white space is refused too;
    C(kind=line) allows spaces (an C(OnCalendar=) expression); C(kind=unit)
    asks for a systemd unit name such as C(network-online.target).
  - C(dagster_dedicated_dirs) checks a map of variable name to directory that
    a role creates and owns (chowns, sets the mode of, or removes files in).
    Each must be an absolute, normalised path (no C(.), C(..), C(//) or
    trailing C(/)), pass C(dagster_unit_values), and be a directory of its own,
    not C(/), a top-level system directory such as C(/etc) or C(/var), a
    standard directory below one (C(/var/lib), C(/var/backups), C(/usr/local),
    C(/etc/systemd), ...), the directory of another service
    (C(/var/lib/postgresql), ...), or anything under C(/proc), C(/sys),
    C(/dev), C(/run), C(/tmp) or C(/var/tmp). With C(disjoint=true) no two of
    them may be the same directory or lie one inside the other. C(protected)
    names further directories (a map of name to path) that none of them may
    equal, lie in or contain.
  - C(dagster_service_account) checks a map of variable name to a user or
    group name the services run as - a valid name, and not a system account
    or group (root, postgres, www-data, sudo, docker, ...).
  - Every error names the variable (and the index of a list item).
options:
  _input:
    description: Map of variable name to value.
    type: dict
    required: true
  kind:
    description: For C(dagster_unit_values) - C(word), C(line) or C(unit).
    type: str
    default: word
  disjoint:
    description: For C(dagster_dedicated_dirs) - no two directories may be nested or equal.
    type: bool
    default: false
  protected:
    description: For C(dagster_dedicated_dirs) - map of name to directory none of the directories may overlap.
    type: dict
    default: {}
  writable:
    description: For C(dagster_dedicated_dirs) - the directories are ones a service may write in (the messages say so).
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Check what the units are written from
  ansible.builtin.assert:
    that:
      - >-
        ({'dagster_webserver_host': dagster_webserver_host} | dagsterops.dagster.dagster_unit_values) is mapping
      - >-
        ({'dagster_run_purge_schedule': dagster_run_purge_schedule}
         | dagsterops.dagster.dagster_unit_values(kind='line')) is mapping
      - >-
        ({'dagster_home': dagster_home, 'dagster_config_dir': dagster_config_dir}
         | dagsterops.dagster.dagster_dedicated_dirs(disjoint=true)) is mapping
      - >-
        ({'dagster_user': dagster_user} | dagsterops.dagster.dagster_service_account) is mapping
    quiet: true
"""

RETURN = r"""
_value:
  description: The input, unchanged, when every value passes.
  type: dict
"""

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - lets the module load without Ansible
    AnsibleFilterError = ValueError  # type: ignore[misc,assignment]

KINDS = ("word", "line", "unit")
# What a unit-file line must not hold, with the reason shown to the user.
_UNSAFE = (
    (re.compile(r"[\n\r]"), "a line break, which would start a new line of the unit file"),
    (re.compile(r"[\x00-\x1f\x7f]"), "a control character"),
    (re.compile(r"%"), "'%', which systemd expands as a specifier (%h, %u, ...)"),
    (re.compile(r"[\"'\\]"), "a quote or '\\', which systemd would unquote"),
    (re.compile(r"\$"), "'$', which systemd expands as a variable"),
    (re.compile(r";"), "';', which ends a command on an ExecStart= line"),
)
_WHITESPACE = re.compile(r"\s")
_UNIT_NAME = re.compile(
    r"[A-Za-z0-9:_.\\@-]+\.(service|socket|target|mount|automount|device|swap|path|timer|slice|scope)\Z"
)

# Top-level directories of the Filesystem Hierarchy Standard and of Debian.
SYSTEM_TOP = {
    "bin", "boot", "dev", "etc", "home", "lib", "lib32", "lib64", "libx32", "lost+found", "media", "mnt",
    "opt", "proc", "root", "run", "sbin", "srv", "sys", "tmp", "usr", "var", "snap",
}
# Standard directories below them, and the directories of services a Dagster host runs.
SYSTEM_DIRS = {
    "/var/lib", "/var/backups", "/var/log", "/var/cache", "/var/tmp", "/var/spool", "/var/mail", "/var/run",
    "/var/lock", "/var/local", "/var/opt", "/var/www", "/var/games", "/var/crash", "/var/db", "/var/empty",
    "/usr/bin", "/usr/sbin", "/usr/lib", "/usr/lib32", "/usr/lib64", "/usr/libx32", "/usr/libexec",
    "/usr/local", "/usr/share", "/usr/include", "/usr/src", "/usr/games",
    "/usr/local/bin", "/usr/local/sbin", "/usr/local/lib", "/usr/local/libexec", "/usr/local/share",
    "/usr/local/include", "/usr/local/src", "/usr/local/etc", "/usr/local/games", "/usr/local/man",
    "/etc/systemd", "/etc/systemd/system", "/etc/ssl", "/etc/ssl/private", "/etc/default", "/etc/sudoers.d",
    "/etc/cron.d", "/etc/cron.daily", "/etc/cron.hourly", "/etc/apt", "/etc/security", "/etc/pam.d",
    "/etc/ssh", "/etc/init.d", "/etc/profile.d", "/etc/network", "/etc/logrotate.d", "/etc/sysctl.d",
    "/etc/modprobe.d", "/etc/tmpfiles.d", "/etc/udev", "/etc/dpkg", "/etc/alternatives", "/etc/postgresql",
    "/etc/postgresql-common", "/etc/nftables.d", "/etc/docker", "/etc/tailscale",
    "/var/lib/postgresql", "/var/lib/dpkg", "/var/lib/apt", "/var/lib/systemd", "/var/lib/docker",
    "/var/lib/containerd", "/var/lib/tailscale", "/var/lib/sudo", "/var/lib/private", "/var/lib/dbus",
    "/var/lib/ucf", "/var/lib/polkit-1", "/var/log/journal", "/var/log/postgresql", "/var/cache/apt",
    "/var/spool/cron", "/var/backups/postgresql",
}
# Whole trees, and why a directory of the roles cannot be in them.
SYSTEM_TREES = {
    "/proc": "a virtual file system",
    "/sys": "a virtual file system",
    "/dev": "a virtual file system",
    "/run": "emptied at every boot",
    "/var/run": "emptied at every boot",
    "/var/lock": "emptied at every boot",
    "/tmp": "writable by every user",
    "/var/tmp": "writable by every user",
}

_ACCOUNT_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}\Z")
# Accounts and groups of Debian's base system and of the services a Dagster host runs.
SYSTEM_ACCOUNTS = {
    "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp", "proxy", "www-data",
    "backup", "list", "irc", "gnats", "nobody", "nogroup", "_apt", "postgres", "sshd", "messagebus",
    "tailscale", "polkitd", "avahi", "ntp", "_chrony", "statd", "tss", "uuidd", "dnsmasq",
    "sudo", "adm", "wheel", "shadow", "disk", "kmem", "tty", "staff", "docker", "ssl-cert", "utmp", "dialout",
    "cdrom", "floppy", "tape", "audio", "video", "plugdev", "netdev", "input", "kvm", "render", "crontab",
    "users", "operator", "src", "voice", "sasl", "fax", "dip", "lxd", "sgx", "_ssh",
}


def _fail(field, problem):
    raise AnsibleFilterError(f"{field}: {problem}")


def _items(values, what):
    """(field, value) for each entry of the map; a list value yields NAME[INDEX]."""
    if not isinstance(values, dict):
        raise AnsibleFilterError(f"{what}: expects a map of variable name to value, got {type(values).__name__}")
    for field, value in values.items():
        if isinstance(value, list):
            for index, item in enumerate(value):
                yield f"{field}[{index}]", item
        else:
            yield field, value


def _unit_value(field, value, kind="word"):
    if not isinstance(value, str) or not value.strip():
        _fail(field, f"must be a non-empty string, got {value!r}")
    for pattern, reason in _UNSAFE:
        if pattern.search(value):
            _fail(field, f"{value!r} holds {reason}")
    if kind != "line" and _WHITESPACE.search(value):
        _fail(field, f"{value!r} holds white space, which systemd would split on")
    if kind == "unit" and not _UNIT_NAME.match(value):
        _fail(field, f"{value!r} is not a systemd unit name such as postgresql.service or network-online.target")
    return value


def dagster_unit_values(values, kind="word"):
    """Check values written on unit-file lines; return them."""
    if kind not in KINDS:
        raise AnsibleFilterError(f"kind: must be one of {', '.join(KINDS)}, got {kind!r}")
    for field, value in _items(values, "dagster_unit_values"):
        _unit_value(field, value, kind)
    return values


def _system_directory(path):
    """Why `path` is not a directory of its own, or None."""
    if path == "/":
        return "is the root directory"
    parts = path.strip("/").split("/")
    if len(parts) == 1 and parts[0] in SYSTEM_TOP:
        return "is a top-level system directory"
    if path in SYSTEM_DIRS:
        return "is a system directory"
    for tree, why in SYSTEM_TREES.items():
        if path == tree or path.startswith(tree + "/"):
            return f"is in {tree}, which is {why}"
    return None


def _inside(path, parent):
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def _dedicated(field, path, writable=False):
    if not isinstance(path, str) or not path.startswith("/"):
        _fail(field, f"must be an absolute path, got {path!r}")
    _unit_value(field, path)
    if posixpath.normpath(path) != path or path.startswith("//"):
        _fail(field, f"{path!r} must be written without '.', '..', '//' or a trailing '/' ({posixpath.normpath(path)!r}?)")
    reason = _system_directory(path)
    if reason and writable:
        _fail(field, f"{path} {reason}; a service may write only in a directory of its own, such as /srv/etl")
    if reason:
        _fail(
            field,
            f"{path} {reason}; the role takes over the owner and mode of this directory, so give it one of "
            "its own, such as /var/lib/dagster, /etc/dagster or /opt/dagster",
        )
    return path


def dagster_dedicated_dirs(dirs, disjoint=False, protected=None, writable=False):
    """Check directories a role owns (or, with writable, a service may write in); return them."""
    checked = [(field, _dedicated(field, path, writable)) for field, path in _items(dirs, "dagster_dedicated_dirs")]
    if disjoint:
        for position, (field, path) in enumerate(checked):
            for other_field, other in checked[:position]:
                if _inside(path, other) or _inside(other, path):
                    relation = "is" if path == other else ("is inside" if _inside(path, other) else "holds")
                    _fail(
                        field,
                        f"{path} {relation} {other_field} ({other}); each needs a directory of its own, "
                        "since they have different owners and modes",
                    )
    if protected is not None and not isinstance(protected, dict):
        raise AnsibleFilterError(f"protected: must be a map of name to directory, got {type(protected).__name__}")
    for field, path in checked:
        for name, other in (protected or {}).items():
            if isinstance(other, str) and other.startswith("/") and (_inside(path, other) or _inside(other, path)):
                _fail(
                    field,
                    f"{path} overlaps {name} ({other}); root must not write where a service writes, "
                    "nor a service where root writes, so keep them apart",
                )
    return dirs


def dagster_service_account(accounts):
    """Check the users and groups the services run as; return them."""
    for field, name in _items(accounts, "dagster_service_account"):
        if not isinstance(name, str) or not _ACCOUNT_NAME.match(name):
            _fail(
                field,
                f"must be a user or group name (lower-case letters, digits, '_' and '-', at most 32), got {name!r}",
            )
        if name in SYSTEM_ACCOUNTS or name.startswith("systemd-"):
            _fail(
                field,
                f"{name} is a system account or group; the Dagster services and the job code they run need an "
                "account of their own, such as dagster",
            )
    return accounts


class FilterModule:
    """Input checks."""

    def filters(self):
        return {
            "dagster_unit_values": dagster_unit_values,
            "dagster_dedicated_dirs": dagster_dedicated_dirs,
            "dagster_service_account": dagster_service_account,
        }
