"""A scenario's platform over the shared base (molecule/shared/platform.yml)."""

from __future__ import annotations

# Lists a platform adds to the base's; any other key of the platform replaces the base's.
ADDED = ("capabilities", "security_opts", "volumes", "tmpfs")


def dagsterops_platform(platform: dict, base: dict) -> dict:
    """The platform over the base: its scalars over the base's, its lists added to the base's.

    Keys create.yml does not read (docker_networks, groups) pass through."""
    if not isinstance(platform, dict) or not platform.get("name"):
        raise ValueError(f"a platform must be a map with a name, got {platform!r}")
    merged = dict(base)
    for key, value in platform.items():
        if key in ADDED:
            if not isinstance(value, list):
                raise ValueError(f"platform {platform['name']}: {key} must be a list, got {value!r}")
            merged[key] = list(base.get(key, [])) + [item for item in value if item not in base.get(key, [])]
        else:
            merged[key] = value
    return merged


class FilterModule:
    def filters(self):
        return {"dagsterops_platform": dagsterops_platform}
