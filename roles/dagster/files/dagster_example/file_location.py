"""The example's run-handling jobs as a code location of type file (python_file
in workspace.yaml): workspace.yaml names this file, and Dagster loads it with
the examples directory as working directory."""

from dagster import Definitions
from dagster_example import pause_job, trivial_job

defs = Definitions(jobs=[pause_job, trivial_job])
