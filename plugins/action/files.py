# Copyright: dagsterops.dagster contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of dagsterops.dagster.files: templates and files become content."""

from __future__ import annotations

import os
import time

from ansible import constants as C
from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible.template import trust_as_template

# What an entry may say besides where its content comes from (checked by the module).
PASSED_ON = ("dest", "state", "owner", "group", "mode", "validate", "secret")
SOURCES = ("template", "src", "content")


def kind_of(value: object) -> str:
    """The YAML name of a value's type (values arrive as Ansible's tagged subclasses)."""
    for kind, name in ((bool, "boolean"), (str, "string"), (int, "integer"), (float, "float"), (list, "list")):
        if isinstance(value, kind):
            return name
    return "null" if value is None else type(value).__name__


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("files",))

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        del tmp
        files = self._task.args.get("files")
        if not isinstance(files, list) or not files:
            raise AnsibleActionFail("files: must be a non-empty list of entries")
        entries = []
        for index, entry in enumerate(files):
            entries.extend(self._resolve(index, entry, task_vars))
        # A secret entry's content travels in secret_contents, which the module's
        # argument spec marks no_log: Ansible keeps it out of the host's journal,
        # where a module logs the arguments it was invoked with.
        secret_contents = []
        for entry in entries:
            if entry.get("secret") and "content" in entry:
                entry["secret_index"] = len(secret_contents)
                secret_contents.append(entry.pop("content"))
        module_result = self._execute_module(
            module_name="dagsterops.dagster.files",
            module_args={"files": entries, "secret_contents": secret_contents}, task_vars=task_vars)
        # The module shows its arguments without the contents, which may hold secrets.
        result.update(module_result)
        return result

    def _resolve(self, index: int, entry: object, task_vars: dict) -> list[dict]:
        """One entry of the task: the module's entries for it (a directory source gives several)."""
        if not isinstance(entry, dict):
            raise AnsibleActionFail(f"files[{index}]: must be a mapping, got {kind_of(entry)}")
        where = f"files[{index}] ({entry.get('dest', 'no dest')})"
        unknown = sorted(set(entry) - set(PASSED_ON) - set(SOURCES) - {"directory_mode"})
        if unknown:
            raise AnsibleActionFail(f"{where}: unknown keys {', '.join(unknown)}")
        if not entry.get("dest"):
            raise AnsibleActionFail(f"{where}: dest is required")
        given = [key for key in SOURCES if entry.get(key) is not None]
        state = entry.get("state", "file")
        if state == "directory":
            if given:
                raise AnsibleActionFail(f"{where}: a directory takes none of {', '.join(SOURCES)}")
            return [self._passed_on(entry)]
        if len(given) != 1:
            raise AnsibleActionFail(f"{where}: give exactly one of {', '.join(SOURCES)}")
        if given[0] == "content":
            return [dict(self._passed_on(entry), content=to_text(entry["content"]))]
        if given[0] == "template":
            return [dict(self._passed_on(entry), content=self._render(where, entry, task_vars))]
        if str(entry["src"]).endswith("/"):
            return self._tree(where, entry)
        path = self._find(where, "files", entry["src"])
        return [dict(self._passed_on(entry), content=self._loader.get_text_file_contents(path))]

    @staticmethod
    def _passed_on(entry: dict) -> dict:
        return {key: entry[key] for key in PASSED_ON if key in entry}

    def _find(self, where: str, kind: str, name: str) -> str:
        try:
            return self._find_needle(kind, name)
        except AnsibleError as error:
            raise AnsibleActionFail(f"{where}: {to_text(error)}") from error

    def _tree(self, where: str, entry: dict) -> list[dict]:
        """A source directory ending in /: its subdirectories and files under dest, in walk order."""
        root = self._find(where, "files", entry["src"])
        dest = str(entry["dest"]).rstrip("/")
        directory = dict(self._passed_on(entry), state="directory", mode=entry.get("directory_mode", "0755"))
        directory.pop("validate", None)
        entries = [dict(directory, dest=dest)]
        for current, dirs, names in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            relative = os.path.relpath(current, root)
            target = dest if relative == "." else os.path.join(dest, relative)
            if relative != ".":
                entries.append(dict(directory, dest=target))
            for name in sorted(names):
                if name.endswith(".pyc"):
                    continue
                content = self._loader.get_text_file_contents(os.path.join(current, name))
                entries.append(dict(self._passed_on(entry), dest=os.path.join(target, name), content=content))
        return entries

    def _render(self, where: str, entry: dict, task_vars: dict) -> str:
        """The template rendered as ansible.builtin.template renders it (trim_blocks, ansible_managed)."""
        source = self._find(where, "templates", entry["template"])
        searchpath = list(task_vars.get("ansible_search_path", [])) + [self._loader.get_basedir(), os.path.dirname(source)]
        searchpath = [path for base in searchpath for path in (os.path.join(base, "templates"), base)]
        variables = dict(task_vars)
        variables.update(template_host=os.uname()[1], template_path=entry["template"], template_fullpath=source,
                         template_destpath=entry["dest"])
        if "ansible_managed" not in variables:
            managed = C.config.get_config_value("DEFAULT_MANAGED_STR").format(
                host=os.uname()[1], uid=os.getuid(), file=entry["template"])
            variables["ansible_managed"] = time.strftime(managed, time.localtime(os.stat(source).st_mtime))
        templar = self._templar.copy_with_new_env(searchpath=searchpath, available_variables=variables)
        data = trust_as_template(self._loader.get_text_file_contents(source))
        rendered = templar.template(data, escape_backslashes=False, overrides=dict(trim_blocks=True))
        return "" if rendered is None else to_text(rendered)
