"""Pin a coherent set of Dagster packages for one Dagster release."""

from __future__ import annotations

import re

DOCUMENTATION = r"""
name: dagster_packages
author: dagsterops maintainers
version_added: "0.1.0"
short_description: The pinned Dagster bundle for a release
description:
  - Dagster's core packages share the release's version C(1.X.Y); its
    libraries (dagster-postgres, dagster-docker, ...) are versioned
    C(0.(X+16).Y) and each pins the exact core version. This filter returns
    pip requirement strings for the core bundle, dagster-postgres, the
    launcher's library and any extra packages, all pinned together.
  - The companion filter C(dagster_library_version) returns the library
    version alone.
options:
  _input:
    description: The Dagster release, C(1.X.Y).
    type: str
    required: true
  run_launcher:
    description: C(default) or C(docker); C(docker) adds dagster-docker.
    type: str
    default: default
  executor:
    description: >-
      C(default) (Dagster's own executors) or C(celery), which adds dagster-celery with its Redis
      client (the environment of a code location whose steps run on Celery workers).
    type: str
    default: default
  extra:
    description: >-
      Further requirement strings, appended as given; one requirement each (no line break), and none
      starting with C(-), which pip and uv read as an option (C(--index-url), C(-e), C(-r)).
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Show the bundle
  ansible.builtin.debug:
    msg: "{{ '1.13.27' | dagsterops.dagster.dagster_packages(run_launcher='docker') }}"
  # dagster==1.13.27, dagster-webserver==1.13.27, ..., dagster-postgres==0.29.27, dagster-docker==0.29.27
"""

RETURN = r"""
_value:
  description: Requirement strings.
  type: list
  elements: str
"""

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - lets the module load without Ansible
    AnsibleFilterError = ValueError  # type: ignore[misc,assignment]

CORE_PACKAGES = ("dagster", "dagster-webserver", "dagster-graphql", "dagster-pipes", "dagster-shared")
LAUNCHER_LIBRARIES = {"default": (), "docker": ("dagster-docker",)}
EXECUTOR_LIBRARIES = {"default": (), "celery": ("dagster-celery[redis]",)}
_VERSION_RE = re.compile(r"^1\.(\d+)\.(\d+)\Z")
_LIBRARY_MINOR_OFFSET = 16
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def dagster_library_version(version):
    """The library version paired with a core release: 1.X.Y -> 0.(X+16).Y."""
    match = _VERSION_RE.match(str(version))
    if not match:
        raise AnsibleFilterError(f"dagster_version: must look like 1.X.Y (for example 1.13.27), got {version!r}")
    minor, patch = int(match.group(1)), int(match.group(2))
    return f"0.{minor + _LIBRARY_MINOR_OFFSET}.{patch}"


def dagster_packages(version, run_launcher="default", extra=None, executor="default"):
    """Requirement strings for the bundle of one release."""
    library = dagster_library_version(version)
    if run_launcher not in LAUNCHER_LIBRARIES:
        raise AnsibleFilterError(
            f"dagster_run_launcher: must be one of {', '.join(LAUNCHER_LIBRARIES)}, got {run_launcher!r}"
        )
    if executor not in EXECUTOR_LIBRARIES:
        raise AnsibleFilterError(f"executor: must be one of {', '.join(EXECUTOR_LIBRARIES)}, got {executor!r}")
    extra = [] if extra is None else extra
    if not isinstance(extra, list) or not all(isinstance(item, str) and item.strip() for item in extra):
        raise AnsibleFilterError("dagster_extra_packages: must be a list of non-empty requirement strings")
    for index, item in enumerate(extra):
        if _CONTROL_RE.search(item):
            raise AnsibleFilterError(
                f"dagster_extra_packages[{index}]: {item!r} holds a line break or control character; "
                "give one requirement per entry"
            )
        if item.lstrip().startswith("-"):
            raise AnsibleFilterError(
                f"dagster_extra_packages[{index}]: {item!r} is an option of pip or uv, not a requirement; set "
                "indexes and the like in dagster_install_environment (UV_INDEX_URL, ...)"
            )
    packages = [f"{name}=={version}" for name in CORE_PACKAGES]
    packages.append(f"dagster-postgres=={library}")
    packages.extend(f"{name}=={library}" for name in LAUNCHER_LIBRARIES[run_launcher])
    packages.extend(f"{name}=={library}" for name in EXECUTOR_LIBRARIES[executor])
    packages.extend(extra)
    return packages


class FilterModule:
    """Dagster package filters."""

    def filters(self):
        return {"dagster_packages": dagster_packages, "dagster_library_version": dagster_library_version}
