"""A code location whose job runs its steps on Celery workers (molecule scenario
celery): six independent steps, each holding for its configured seconds and
logging the host it ran on."""

import os
import socket
import time

from dagster import Config, Definitions, OpExecutionContext, job, op
from dagster_celery import celery_executor


class StepConfig(Config):
    seconds: float = 3.0


def _step(name):
    @op(name=name)
    def step(context: OpExecutionContext, config: StepConfig) -> str:
        host = socket.gethostname()
        context.log.info(f"celery step {name} started on {host} pid {os.getpid()}")
        time.sleep(config.seconds)
        context.log.info(f"celery step {name} finished on {host} pid {os.getpid()}")
        return host

    return step


STEPS = [_step(f"step_{number}") for number in range(1, 7)]


@job(executor_def=celery_executor)
def six_steps():
    for step in STEPS:
        step()


defs = Definitions(jobs=[six_steps])
