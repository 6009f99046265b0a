"""A small code location that a fresh deployment can run.

Three assets and a job that materializes them in the run's own process
(the in-process executor: one Python process per run, not one per asset, so
that a run costs the host little). `trivial_job` is one op in the
run's own process: the shortest run there is, for launch latency. `run_host` records where the
run executed (host name and process id), which the collection's tests use to
show on which machine a run happened. Two more jobs show the instance's run
handling: `flaky_job` fails its first attempt (run retries bring it to
success) and `slow_job` sleeps for ten minutes (run monitoring and queue
limits act on it). `pause_job` sleeps for `seconds` (40 by default), or until
`release_file` appears (failing if it does not within `seconds`), and logs its
process id when it starts and when it ends: a run that lives through a
restart of the services ends SUCCESS with the same id twice. At its end it also
logs the code it runs: CODE_VERSION, whether the `humanize` package was
importable when the code was loaded, and the DAGSTEROPS_PROBE environment
variable it holds. `runaway_job`
allocates memory without bound: the memory limit of the unit that runs it
ends it, and nothing else. `idle_sensor`, stopped until someone starts it,
skips at each tick: the ticks it leaves are what the instance's tick
retention purges.
"""

import os
import socket
import time

try:  # not among the example's requirements: a location that adds it to its packages has it
    import humanize
except ImportError:
    humanize = None

from dagster import (
    Config,
    Definitions,
    MaterializeResult,
    SkipReason,
    asset,
    define_asset_job,
    in_process_executor,
    job,
    op,
    sensor,
)


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


example_job = define_asset_job("example_job", selection=["numbers", "total", "run_host"],
                               executor_def=in_process_executor)


@op
def fail_first_attempt(context):
    attempt = int(context.run.tags.get("dagster/retry_number", "0"))
    if attempt == 0:
        raise RuntimeError("the first attempt of flaky_job fails on purpose")
    context.log.info(f"attempt {attempt} succeeds")
    return attempt


@job(description="Fails its first attempt; a run retry succeeds.")
def flaky_job():
    fail_first_attempt()


@op
def sleep_ten_minutes():
    time.sleep(600)


@job(description="Sleeps for ten minutes.")
def slow_job():
    sleep_ten_minutes()


# The version of this code; tests that change the code change it.
CODE_VERSION = "1"


class PauseConfig(Config):
    seconds: float = 40
    release_file: str = ""


@op
def pause(context, config: PauseConfig):
    context.log.info(f"pause_job worker pid {os.getpid()} started")
    if config.release_file:
        deadline = time.monotonic() + config.seconds
        while not os.path.exists(config.release_file):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{config.release_file} did not appear within {config.seconds} s")
            time.sleep(0.5)
    else:
        time.sleep(config.seconds)
    packages = f"humanize {humanize.naturalsize(10**6)}" if humanize else "humanize absent"
    probe = os.environ.get("DAGSTEROPS_PROBE", "unset")
    context.log.info(f"pause_job worker pid {os.getpid()} finished; "
                     f"code version {CODE_VERSION}; {packages}; DAGSTEROPS_PROBE={probe}")


@job(description="Sleeps for a while in the run's own process, logging its process id.",
     executor_def=in_process_executor)
def pause_job():
    pause()


@op
def allocate_without_bound(context):
    held = []
    while True:
        # 64 MiB at a time, every page written so that it is really used.
        held.append(bytearray(b"x" * (64 << 20)))
        if len(held) % 16 == 0:
            context.log.info(f"holding {len(held) * 64} MiB")


@job(description="Allocates memory until something stops it.", executor_def=in_process_executor)
def runaway_job():
    allocate_without_bound()


@op
def return_one():
    return 1


@job(description="One op, run in the run's own process.", executor_def=in_process_executor)
def trivial_job():
    return_one()


@sensor(job=trivial_job, minimum_interval_seconds=30, description="Skips at each tick; stopped by default.")
def idle_sensor():
    return SkipReason("idle_sensor requests no run")


defs = Definitions(
    assets=[numbers, total, run_host],
    jobs=[example_job, flaky_job, slow_job, trivial_job, pause_job, runaway_job],
    sensors=[idle_sensor],
)
