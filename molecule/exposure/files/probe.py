"""The exposure scenario's `file` code location (molecule/exposure/prepare.yml
copies it to /srv/exposure-code/probe.py).

`hold_job` is one op, in the run's own process, that holds its run open until
a release file exists (or a deadline passes): the load test keeps many runs
in progress at once for as long as it needs, then ends them together. The
verifier also replaces this file with one that raises, to make the location
fail to load.
"""

import os
import time

from dagster import Definitions, Field, in_process_executor, job, op


@op(
    config_schema={
        "release": Field(str, description="The run ends once this file exists."),
        "deadline": Field(float, description="Epoch seconds at which the run ends in any case."),
    }
)
def hold(context):
    release, deadline = context.op_config["release"], context.op_config["deadline"]
    while not os.path.exists(release) and time.time() < deadline:
        time.sleep(1)
    return os.path.exists(release)


@job(description="Holds its run open until released.", executor_def=in_process_executor)
def hold_job():
    hold()


defs = Definitions(jobs=[hold_job])
