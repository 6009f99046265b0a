#!/usr/bin/python
# Copyright: dagsterops.dagster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Many files and directories of a host in one module call."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: files
short_description: Many files and directories put in place in one module call
description:
  - Puts every entry of O(files) in place with the content, owner, group and
    mode given. A directory is created, a file written when its content
    differs, and ownership and mode corrected either way.
  - One call instead of one C(template) or C(copy) task per file, each of which
    costs two module calls even when nothing changes. The action plugin of the
    same name renders templates and reads files on the controller; the content
    reaches the host in the module's arguments, never on a command line.
  - A file is written to a private temporary file in its directory, checked by
    its O(files[].validate) command if it has one, given its owner, group and
    mode, and only then moved over the old one.
  - Nothing is written through a path that another user could change. Every
    directory from C(/) to an entry's parent must belong to root and be
    writable by nobody else (a sticky directory such as C(/tmp) may lie on the
    way, not be the parent); otherwise the module fails before any change.
    Existing entries are opened without following a symbolic link, and their
    owner and mode are set on the open file.
  - Supports check mode and diff mode. A O(files[].secret) entry shows no
    content in the diff.
version_added: 1.0.0
options:
  files:
    description: What to put in place, in order (a directory before its files).
    type: list
    elements: dict
    required: true
    suboptions:
      dest:
        description: Absolute path of the file or directory.
        type: path
        required: true
      state:
        description: V(file) writes O(files[].content); V(directory) creates the directory.
        type: str
        choices: [file, directory]
        default: file
      content:
        description:
          - The whole content of a file; with the action plugin, from
            O(files[].template) or O(files[].src) instead.
        type: str
      template:
        description:
          - A template of the role or playbook, rendered on the controller into O(files[].content) by the action
            plugin, with the task's variables.
        type: str
      src:
        description:
          - A file of the role or playbook, read on the controller into O(files[].content) by the action plugin.
          - A directory, given with a trailing V(/), becomes one entry per file and directory below it, the
            directories with O(files[].directory_mode).
        type: str
      directory_mode:
        description: With a directory O(files[].src), the mode of the directories, such as V("0755").
        type: str
        default: "0755"
      owner:
        description: Owning user.
        type: str
        required: true
      group:
        description: Owning group.
        type: str
        required: true
      mode:
        description: Octal mode as a string, such as V("0640").
        type: str
        required: true
      validate:
        description: Command that must succeed on the new content before it replaces the file; V(%s) is the temporary file.
        type: str
      secret:
        description: Leave the content out of the diff.
        type: bool
        default: false
      secret_index:
        description:
          - The content is O(secret_contents[secret_index]) instead of O(files[].content). The action plugin
            moves the content of every O(files[].secret) entry there.
        type: int
  secret_contents:
    description:
      - Contents of secret entries. Marked C(no_log), so that Ansible leaves them out of the
        invocation it logs on the host and out of the result.
    type: list
    elements: str
    default: []
author:
  - dagsterops.dagster contributors
"""

EXAMPLES = r"""
- name: Write the instance configuration
  dagsterops.dagster.files:
    files:
      - {dest: /var/lib/dagster, state: directory, owner: dagster, group: dagster, mode: "0750"}
      - dest: /var/lib/dagster/dagster.yaml
        template: dagster.yaml.j2
        owner: root
        group: dagster
        mode: "0640"
        validate: /opt/dagster/current/bin/python /opt/dagster/validate-instance.py %s
"""

RETURN = r"""
changed_paths:
  description: The entries that were (or in check mode would be) created or changed.
  returned: always
  type: list
  elements: str
"""

import grp
import os
import pwd
import shlex
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native

ENTRY = dict(
    dest=dict(type="path", required=True),
    state=dict(type="str", choices=["file", "directory"], default="file"),
    content=dict(type="str"),
    owner=dict(type="str", required=True),
    group=dict(type="str", required=True),
    mode=dict(type="str", required=True),
    validate=dict(type="str"),
    secret=dict(type="bool", default=False),
    secret_index=dict(type="int"),
)


def redacted(params: dict) -> dict:
    """The arguments as the result shows them: every entry without its content."""
    return {"module_args": {"files": [{key: value for key, value in entry.items() if key != "content"}
                                      for entry in params["files"]]}}


def fail(module: AnsibleModule, msg: str, **extra) -> None:
    module.fail_json(msg=msg, invocation=redacted(module.params), **extra)


def ids(module: AnsibleModule, entry: dict) -> tuple[int, int]:
    """Numeric ids of the entry's owner and group; a name that does not exist fails the module."""
    try:
        uid = pwd.getpwnam(entry["owner"]).pw_uid
    except KeyError:
        fail(module, f"{entry['dest']}: user {entry['owner']} does not exist")
    try:
        gid = grp.getgrnam(entry["group"]).gr_gid
    except KeyError:
        fail(module, f"{entry['dest']}: group {entry['group']} does not exist")
    return uid, gid


def parse_mode(module: AnsibleModule, entry: dict) -> int:
    try:
        mode = int(entry["mode"], 8)
    except ValueError:
        fail(module, f"{entry['dest']}: mode must be an octal string such as \"0644\", got {entry['mode']!r}")
    if not 0 <= mode <= 0o7777:
        fail(module, f"{entry['dest']}: mode {entry['mode']!r} is out of range")
    return mode


def attributes_differ(current: os.stat_result, uid: int, gid: int, mode: int) -> list[str]:
    """Which of owner, group and mode of an existing entry are not as wanted."""
    differ = []
    if current.st_uid != uid:
        differ.append("owner")
    if current.st_gid != gid:
        differ.append("group")
    if stat.S_IMODE(current.st_mode) != mode:
        differ.append("mode")
    return differ


def read_current(path: str) -> bytes | None:
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    with os.fdopen(handle, "rb") as current:
        return current.read()


def unsafe_directory(path: str) -> str | None:
    """Why a root write in directory `path` could be redirected by another user, or None.

    Each directory from / down to `path` (symbolic links resolved) must belong
    to root and be writable by no one else. An ancestor may be sticky and
    world-writable (/tmp): the next component, which belongs to root, cannot be
    renamed or replaced there by anyone else.
    """
    real = os.path.realpath(path)
    parts = [part for part in real.split("/") if part]
    current = "/"
    for index in range(len(parts) + 1):
        if index:
            current = os.path.join(current, parts[index - 1])
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            return None  # created by an earlier entry, checked then
        if info.st_uid != 0:
            return f"{current} belongs to {owner_name(info.st_uid)}, not root"
        sticky_on_the_way = info.st_mode & stat.S_ISVTX and index < len(parts)
        if info.st_mode & stat.S_IWGRP and info.st_gid != 0 and not sticky_on_the_way:
            return f"{current} is writable by the group {group_name(info.st_gid)}"
        if info.st_mode & stat.S_IWOTH and not sticky_on_the_way:
            return f"{current} is writable by every user"
    return None


def require_safe_parent(module: AnsibleModule, entry: dict) -> None:
    if os.geteuid() != 0:
        return  # only root's writes can be turned against the system
    parent = os.path.dirname(entry["dest"].rstrip("/")) or "/"
    reason = unsafe_directory(parent)
    if reason is not None:
        fail(module, f"{entry['dest']}: refusing to write as root through a directory another user can change: {reason}")


def set_attributes(path: str, uid: int, gid: int, mode: int, directory: bool) -> None:
    """Owner, group and mode of `path` itself, set on the open file: a symbolic link is never followed."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | (os.O_DIRECTORY if directory else 0)
    handle = os.open(path, flags)
    try:
        os.fchown(handle, uid, gid)
        os.fchmod(handle, mode)
    finally:
        os.close(handle)


def validate(module: AnsibleModule, entry: dict, path: str) -> None:
    command = entry["validate"]
    if "%s" not in command:
        fail(module, f"{entry['dest']}: validate must contain %s, got {command!r}")
    rc, out, err = module.run_command([part.replace("%s", path) for part in shlex.split(command)])
    if rc != 0:
        # The validator's own output names what is wrong; it never echoes the file.
        fail(module, f"{entry['dest']}: the new content failed validation ({command})", rc=rc,
                         stdout=out, stderr=err)


def write_file(module: AnsibleModule, entry: dict, content: bytes, uid: int, gid: int, mode: int) -> None:
    """Private temporary file beside the destination, checked, then moved over it."""
    directory = os.path.dirname(entry["dest"]) or "/"
    handle, temporary = tempfile.mkstemp(prefix=".dagsterops-", dir=directory)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
            out.flush()
            if entry.get("validate"):
                validate(module, entry, temporary)
            os.fchown(out.fileno(), uid, gid)
            os.fchmod(out.fileno(), mode)
        os.replace(temporary, entry["dest"])
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def put_directory(module: AnsibleModule, entry: dict, uid: int, gid: int, mode: int) -> dict | None:
    path = entry["dest"]
    current = lstat(path)
    if current is not None and not stat.S_ISDIR(current.st_mode):
        fail(module, f"{path}: exists and is not a directory")
    if current is None:
        if not module.check_mode:
            os.makedirs(os.path.dirname(path.rstrip("/")) or "/", exist_ok=True)
            os.mkdir(path, 0o700)
            set_attributes(path, uid, gid, mode, directory=True)
        return {"before": {"path": path, "state": "absent"}, "after": {"path": path, "state": "directory"}}
    return correct_attributes(module, entry, current, uid, gid, mode)


def lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def correct_attributes(module: AnsibleModule, entry: dict, current: os.stat_result, uid: int, gid: int,
                       mode: int) -> dict | None:
    """Owner, group and mode of an entry whose content is right: the diff, or None when nothing differs."""
    if not attributes_differ(current, uid, gid, mode):
        return None
    path = entry["dest"]
    if not module.check_mode:
        set_attributes(path, uid, gid, mode, directory=stat.S_ISDIR(current.st_mode))
    return {"before": {"path": path, **describe(current)}, "after": {"path": path, **entry_attributes(entry)}}


def describe(current: os.stat_result) -> dict:
    return {
        "owner": owner_name(current.st_uid),
        "group": group_name(current.st_gid),
        "mode": f"{stat.S_IMODE(current.st_mode):04o}",
    }


def entry_attributes(entry: dict) -> dict:
    return {"owner": entry["owner"], "group": entry["group"], "mode": entry["mode"]}


def owner_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def put_file(module: AnsibleModule, entry: dict, uid: int, gid: int, mode: int) -> dict | None:
    path = entry["dest"]
    if entry.get("content") is None:
        fail(module, f"{path}: a file entry needs content")
    wanted = to_bytes(entry["content"], errors="surrogate_or_strict")
    current = lstat(path)
    if current is not None and not stat.S_ISREG(current.st_mode):
        fail(module, f"{path}: exists and is not a regular file")
    existing = read_current(path) if current is not None else None
    if existing != wanted:
        if not module.check_mode:
            write_file(module, entry, wanted, uid, gid, mode)
        elif entry.get("validate") and os.path.isdir(os.path.dirname(path)):
            # Check mode still says whether the new content would be refused.
            handle, temporary = tempfile.mkstemp(prefix=".dagsterops-check-", dir=os.path.dirname(path))
            try:
                with os.fdopen(handle, "wb") as out:
                    out.write(wanted)
                validate(module, entry, temporary)
            finally:
                os.unlink(temporary)
        if entry["secret"]:
            shown_before = shown_after = f"(content of {path} not shown)\n"
        else:
            shown_before = to_native(existing, errors="surrogate_or_strict") if existing is not None else ""
            shown_after = entry["content"]
        return {"before_header": path, "after_header": path, "before": shown_before, "after": shown_after}
    return correct_attributes(module, entry, current, uid, gid, mode)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(files=dict(type="list", elements="dict", required=True, options=ENTRY),
                           secret_contents=dict(type="list", elements="str", default=[], no_log=True)),
        supports_check_mode=True,
    )
    changed_paths, diffs = [], []
    secrets = module.params["secret_contents"]
    for entry in module.params["files"]:
        if entry.get("secret_index") is not None:
            if not entry["secret"] or not 0 <= entry["secret_index"] < len(secrets):
                fail(module, f"{entry['dest']}: secret_index must name one of secret_contents of a secret entry")
            entry["content"] = secrets[entry["secret_index"]]
        if not os.path.isabs(entry["dest"]):
            fail(module, f"dest must be an absolute path, got {entry['dest']!r}")
        uid, gid = ids(module, entry)
        mode = parse_mode(module, entry)
        require_safe_parent(module, entry)
        put = put_directory if entry["state"] == "directory" else put_file
        diff = put(module, entry, uid, gid, mode)
        if diff is not None:
            changed_paths.append(entry["dest"])
            diffs.append(diff)
    result = {"changed": bool(changed_paths), "changed_paths": changed_paths}
    if module._diff:
        result["diff"] = diffs
    module.exit_json(invocation=redacted(module.params), **result)


if __name__ == "__main__":
    main()
