"""A small code location that a fresh deployment can run.

Three assets and a job that materializes them. `run_host` records where the
run executed (host name and process id), which the collection's tests use to
show on which machine a run happened.
"""

import os
import socket

from dagster import Definitions, MaterializeResult, asset, define_asset_job


@asset(description="A handful of numbers.")
def numbers():
    return [1, 2, 3, 4, 5]


@asset(description="The sum of the numbers.")
def total(numbers):
    return sum(numbers)


@asset(description="Where this run executed.")
def run_host():
    return MaterializeResult(
        metadata={
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "in_container": os.path.exists("/.dockerenv"),
        }
    )


example_job = define_asset_job("example_job", selection=["numbers", "total", "run_host"])

defs = Definitions(assets=[numbers, total, run_host], jobs=[example_job])
