"""The limits' share of a request: admit, price, settle and the rate-limit headers, in process.

One ``Limiter`` over ``InMemoryLimitStorage`` with the benchmark tier's four windows (``plain``) or those
plus a cost, a tier-wide, a model-wide global and a team limit with a priced model (``scoped``), called as
the pipeline calls it for one chat request. Prints CPU µs per request (best of ``--repeat``); for
instructions, run it under callgrind with ``--calls N`` and ``--calls 0`` and divide the difference by N:

    .venv/bin/python bench/limits_cost.py --variant scoped
    PYTHONHASHSEED=0 valgrind --tool=callgrind .venv/bin/python bench/limits_cost.py --calls 2000 --repeat 1
"""

from __future__ import annotations

import argparse
import asyncio
import time

from maas_gateway.limits import (
    InMemoryLimitStorage,
    Limiter,
    LimitRule,
    RuleBook,
    TierPolicy,
    TokenCharge,
    rate_limit_headers,
)
from maas_gateway.pricing import PriceSchedule, PriceVersion

__all__ = ["main"]

_HUGE = 10**12


def _limiter(scoped: bool) -> tuple[Limiter, PriceSchedule | None]:
    rules = [
        LimitRule(_HUGE, "requests", 60.0),
        LimitRule(_HUGE, "tokens", 60.0),
        LimitRule(_HUGE, "tokens", 3600.0),
        LimitRule(_HUGE, "tokens", 86400.0),
    ]
    teams: dict[str, tuple[LimitRule, ...]] = {}
    prices = None
    if scoped:
        rules += [
            LimitRule(_HUGE, "cost", 86400.0),
            LimitRule(_HUGE, "requests", 60.0, scope="tier"),
            LimitRule(_HUGE, "tokens", 3600.0, model="m", scope="global"),
        ]
        teams = {"t": (LimitRule(_HUGE, "tokens", 86400.0, scope="team"),)}
        prices = PriceSchedule([PriceVersion(1.7e9, 0.5, 1.5), PriceVersion(1.75e9, 0.4, 1.2)])
    book = RuleBook({"bench": TierPolicy(tuple(rules), False, 1024)}, teams=teams)
    return Limiter(InMemoryLimitStorage(), book), prices


async def _calls(limiter: Limiter, prices: PriceSchedule | None, team: str | None, calls: int) -> None:
    for _ in range(calls):
        admission = await limiter.admit("u", "bench", "m", team=team, key_id="k")
        price = prices.at(time.time()) if prices is not None else None
        charge = TokenCharge.of(10, 20, 1.0, price)
        values = await limiter.settle(admission, charge)
        rate_limit_headers(admission.counters, values, consumed=charge)
        if price is not None:
            assert price.name  # the usage record names the version


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=("plain", "scoped"), default="plain")
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    scoped = args.variant == "scoped"
    limiter, prices = _limiter(scoped)
    best = float("inf")
    for _ in range(args.repeat):
        started = time.process_time()
        asyncio.run(_calls(limiter, prices, "t" if scoped else None, args.calls))
        best = min(best, time.process_time() - started)
    if args.calls and args.repeat:
        print(f"{args.variant}: {best / args.calls * 1e6:.2f} µs per request (best of {args.repeat})")


if __name__ == "__main__":
    main()
