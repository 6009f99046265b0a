"""Every role's meta/argument_specs.yml and defaults/main.yml describe the same variables."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLES_DIR = Path(__file__).resolve().parents[2] / "roles"
ROLES = sorted(spec.parent.parent.name for spec in ROLES_DIR.glob("*/meta/argument_specs.yml"))

# Python types a default of each argument-spec type may have.
TYPES = {
    "str": str,
    "path": str,
    "int": int,
    "bool": bool,
    "list": list,
    "dict": dict,
    "float": (int, float),
    "raw": object,
}


def _load(role, *parts):
    return yaml.safe_load((ROLES_DIR / role).joinpath(*parts).read_text(encoding="utf-8"))


def options(role):
    return _load(role, "meta", "argument_specs.yml")["argument_specs"]["main"]["options"]


def defaults(role):
    return _load(role, "defaults", "main.yml") or {}


def test_roles_are_found():
    assert "dagster" in ROLES
    assert "dagster_postgresql" in ROLES


@pytest.mark.parametrize("role", ROLES)
def test_argument_specs_and_defaults_list_the_same_variables(role):
    in_specs, in_defaults = set(options(role)), set(defaults(role))
    assert in_specs - in_defaults == set(), "in argument_specs.yml but not in defaults/main.yml"
    assert in_defaults - in_specs == set(), "in defaults/main.yml but not in argument_specs.yml"


@pytest.mark.parametrize("role", ROLES)
def test_spec_defaults_equal_the_defaults(role):
    role_defaults = defaults(role)
    drift = {
        name: {"argument_specs": spec.get("default"), "defaults": role_defaults[name]}
        for name, spec in options(role).items()
        if name in role_defaults and spec.get("default") != role_defaults[name]
    }
    assert drift == {}


@pytest.mark.parametrize("role", ROLES)
def test_every_option_has_a_type_and_a_description(role):
    incomplete = [name for name, spec in options(role).items() if not spec.get("type") or not spec.get("description")]
    assert incomplete == []


@pytest.mark.parametrize("role", ROLES)
def test_every_default_has_its_declared_type_and_is_a_choice(role):
    wrong = []
    for name, spec in options(role).items():
        if "default" not in spec:
            continue
        value, expected = spec["default"], TYPES[spec["type"]]
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            wrong.append(f"{name}: {value!r} is not a {spec['type']}")
        if "choices" in spec:
            # Ansible checks a list's elements against the choices.
            values = value if spec.get("type") == "list" else [value]
            outside = [item for item in values if item not in spec["choices"]]
            if outside:
                wrong.append(f"{name}: {outside!r} not among {spec['choices']}")
        if spec["type"] == "list" and spec.get("elements") in TYPES and isinstance(value, list):
            if not all(isinstance(item, TYPES[spec["elements"]]) for item in value):
                wrong.append(f"{name}: an element is not a {spec['elements']}")
    assert wrong == []


@pytest.mark.parametrize("role", ROLES)
def test_public_variables_carry_the_role_prefix(role):
    prefix = role + "_"
    names = set(options(role)) | set(defaults(role))
    assert sorted(name for name in names if not name.startswith(prefix)) == []
