"""Sphinx configuration of the collection's docs site (scripts/docs.sh builds it)."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

project = "dagsterops.dagster"
copyright = "dagsterops maintainers"
title = "dagsterops.dagster: Dagster on Linux hosts"
html_short_title = "dagsterops.dagster"

extensions = ["sphinx.ext.autodoc", "sphinx.ext.intersphinx", "sphinx_antsibull_ext"]
pygments_style = "ansible"
highlight_language = "YAML+Jinja"
html_theme = "sphinx_ansible_theme"
html_show_sphinx = False
display_version = False
html_use_smartypants = True
html_use_modindex = False
html_use_index = False
html_copy_source = False
default_role = "any"
nitpicky = True

# The pages antsibull-docs writes refer to a few labels of Ansible's own
# documentation. The build runs offline, so their targets come from a small
# inventory written here instead of the one on the web.
ANSIBLE_DOCS = "https://docs.ansible.com/projects/ansible/devel/"
ANSIBLE_LABELS = {
    "action_plugins": ("plugins/action.html", "Action plugins"),
    "common_return_values": ("reference_appendices/common_return_values.html", "Return Values"),
    "ansible_configuration_settings": ("reference_appendices/config.html", "Ansible Configuration Settings"),
    "playbooks_filters": ("playbook_guide/playbooks_filters.html", "Using filters to manipulate data"),
    "playbooks_reuse_roles": ("playbook_guide/playbooks_reuse_roles.html", "Roles"),
    "modules_plugins_index": ("module_plugin_guide/index.html", "Using Ansible modules and plugins"),
}


def _write_inventory(path: Path) -> None:
    header = (
        "# Sphinx inventory version 2\n# Project: Ansible\n# Version: devel\n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    body = "".join(f"{label} std:label -1 {uri} {name}\n" for label, (uri, name) in sorted(ANSIBLE_LABELS.items()))
    path.write_bytes(header.encode() + zlib.compress(body.encode()))


_INVENTORY = Path(os.environ.get("DAGSTEROPS_DOCS_BUILD", ".")) / "ansible_devel.inv"
_write_inventory(_INVENTORY)
intersphinx_mapping = {"ansible_devel": (ANSIBLE_DOCS, str(_INVENTORY))}
