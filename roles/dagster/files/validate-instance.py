"""Check a dagster.yaml against the instance schema of the installed Dagster.

Usage: python validate-instance.py PATH. Exits 1 with Dagster's own messages
when the file would not load. Used as the `validate:` command of the template
task, so a bad configuration never replaces a good one.
"""

import sys

import yaml
from dagster._config import Shape, process_config
from dagster._core.instance.config import dagster_instance_config_schema


def main(path):
    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle) or {}
    result = process_config(Shape(dagster_instance_config_schema()), data)
    if not result.success:
        for error in result.errors:
            print(f"dagster.yaml: {error.message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
