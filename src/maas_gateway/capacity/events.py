"""What the gate reports as it works, for the metrics: queue depth, waiting times, slots held.

``GatewayMetrics`` implements it (metrics/ knows nothing of this package; the shape is enough).
"""

from __future__ import annotations

from typing import Literal, Protocol

__all__ = ["CapacityEvents", "NoEvents", "WaitOutcome"]

# How a wait ended: a slot ("served"), the deadline ("timeout"), another request took the place in a
# full line ("shed"), or the line was full and the request never joined it ("rejected", zero seconds).
WaitOutcome = Literal["served", "timeout", "shed", "rejected"]


class CapacityEvents(Protocol):
    def queue_changed(self, model: str, tier: str, change: int) -> None:
        """``change`` requests (+1 or -1) joined or left the model's line in this process."""
        ...

    def waited(self, model: str, tier: str, seconds: float, outcome: WaitOutcome) -> None: ...

    def in_flight_changed(self, model: str, change: int) -> None:
        """This process holds ``change`` more (or fewer) of the model's capacity leases."""
        ...


class NoEvents:
    """Reports to nobody (metrics off, and unit tests)."""

    def queue_changed(self, model: str, tier: str, change: int) -> None:
        pass

    def waited(self, model: str, tier: str, seconds: float, outcome: WaitOutcome) -> None:
        pass

    def in_flight_changed(self, model: str, change: int) -> None:
        pass
