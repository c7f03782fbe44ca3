"""What the failed-authentication throttle costs a successful request (a micro-benchmark, one core).

Times the pre-check alone (``FailureGate.check`` for an address that never failed, with an empty table and
with 100,000 remembered addresses) and reading the client address from the scope. Run:
``.venv/bin/python bench/auth_throttle.py`` (pin it with ``taskset -c 1`` on a shared machine).
"""

from __future__ import annotations

import timeit
from typing import Any

from maas_gateway.auth.failure_gate import FailureGate
from maas_gateway.auth.throttle import FailureThrottle
from maas_gateway.http.forwarded import client_address

NUMBER = 1_000_000


def best_microseconds(stmt: str, context: dict[str, Any]) -> float:
    """The fastest of seven runs, per call: the least disturbed by other work on the machine."""
    return min(timeit.repeat(stmt, number=NUMBER, repeat=7, globals=context)) / NUMBER * 1e6


def main() -> None:
    throttle = FailureThrottle(burst=20, per=60.0, max_addresses=100_000)
    context: dict[str, Any] = {
        "gate": FailureGate(throttle),
        "scope": {"client": ("10.1.2.3", 51234), "headers": []},
        "client_address": client_address,
    }
    check = "gate.check('10.1.2.3')"
    print(f"check, empty table:        {best_microseconds(check, context):.3f} µs")
    for number in range(100_000):
        throttle.failed(f"2001:db8::{number:x}", 0.0)
    print(f"check, 100,000 addresses:  {best_microseconds(check, context):.3f} µs")
    print(f"client_address(scope):     {best_microseconds('client_address(scope)', context):.3f} µs")


if __name__ == "__main__":
    main()
