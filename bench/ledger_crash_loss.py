"""Usage records lost when a gateway is SIGKILLed during a PostgreSQL outage, over many runs.

Each run (``tests/support/crash_loss.py``): a gateway with the production ledger defaults
(``flush_interval`` 1 s, ``spool_commit_interval`` 20 ms) on a private PostgreSQL serves chat load from
4 client threads; PostgreSQL is stopped (every other run: SIGKILLed); at a random moment of the outage
the gateway is SIGKILLed; PostgreSQL comes back, a new gateway replays the spool at start, and the
request ids the clients saw answered are compared with the ledger. Needs PostgreSQL's server binaries
(pg_ctl, initdb). About 10 s per run.

    .venv/bin/python bench/ledger_crash_loss.py --runs 20
"""

from __future__ import annotations

import argparse
import random
import signal
import statistics
import sys
import tempfile
from pathlib import Path

# The harness lives with the tests, which share it; run from the checkout, it imports from there.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.crash_loss import CrashRun, crash_during_outage  # after the path above
from tests.support.postgres_server import PrivatePostgres  # after the path above
from tests.support.processes import ServerProcess, free_port, maas  # after the path above

__all__ = ["main"]


def _summary(label: str, runs: list[CrashRun]) -> str:
    if not runs:
        return f"{label}: no runs"
    lost = [run.lost for run in runs]
    return (
        f"{label}: {len(runs)} runs, lost max {max(lost)}, median {statistics.median(lost):g}, "
        f"mean {statistics.mean(lost):.1f} records (answers in the outage: median "
        f"{statistics.median(run.answered_in_outage for run in runs):g}, "
        f"{statistics.median(run.rate for run in runs):.0f}/s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--longest", type=float, default=3.0, help="Latest kill, in seconds of outage.")
    parser.add_argument("--flush-interval", default="1s")
    parser.add_argument("--commit-interval", default="20ms")
    args = parser.parse_args()
    rng = random.Random(args.seed)  # noqa: S311  # kill moments for a benchmark, not a secret
    settings = {"flush_interval": args.flush_interval, "spool_commit_interval": args.commit_interval}
    work = Path(tempfile.mkdtemp(prefix="maas-crash-loss-"))
    port = free_port()
    runs: list[CrashRun] = []
    with ServerProcess(maas("sim", "--port", str(port)), port, work / "sim.log") as simulator:
        postgres = PrivatePostgres().init()
        postgres.start()
        try:
            for index in range(args.runs):
                run = crash_during_outage(
                    simulator.url,
                    postgres,
                    work / f"run-{index}",
                    kill_after=round(rng.uniform(0.05, args.longest), 3),
                    sig=signal.SIGKILL,
                    kill_database=index % 2 == 1,
                    database=settings,
                )
                runs.append(run)
                print(
                    f"run {index + 1:2d}: PostgreSQL {run.outage:7s}, SIGKILL {run.kill_after:5.2f} s into "
                    f"the outage, {run.answered_in_outage:5d} answered in it, lost {run.lost}",
                    flush=True,
                )
        finally:
            postgres.remove()
    print(f"flush_interval {args.flush_interval}, spool_commit_interval {args.commit_interval}")
    print(_summary("all runs", runs))
    # Whether the spool held records just before the kill tells whether a flush had failed yet.
    print(_summary("killed before the first failed flush", [run for run in runs if not run.spooled]))
    print(_summary("killed in outage mode (spooling)", [run for run in runs if run.spooled]))


if __name__ == "__main__":
    main()
