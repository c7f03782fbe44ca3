"""Reconciliation: the ledger's tokens per backend and model against the backend's own counters.

For each series of counter readings (a backend and a model it serves) the period actually compared runs
from the reading at or before ``since`` to the last reading at or before ``until``: the backend's count is
the counters' growth between them (``readings.growth_of``, resets included), and the ledger's is the sum
of its records that arrived in between. The drift is ``|backend - ledger| / max(backend, ledger)``, 0 to
1; over ``DRIFT_WARNING`` (1 %) it is a warning. A request in flight across a reading counts on the
backend at one side and in the ledger (by its arrival) at the other, so short periods drift more.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

from maas_gateway.metering.readings import BackendReadings, growth_of
from maas_gateway.metering.store import LedgerBackendTotals

__all__ = ["DRIFT_WARNING", "Reconciliation", "drift_ratio", "reconcile"]

DRIFT_WARNING = 0.01


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """One backend and model over one period: what each side counted."""

    backend: str
    model: str  # the backend's model_name
    since: float | None  # the readings that bound the period compared (None: too few readings)
    until: float | None
    ledger_prompt_tokens: int
    ledger_completion_tokens: int
    ledger_requests: int
    backend_prompt_tokens: float | None  # None: the backend's counters were not read in the period
    backend_generation_tokens: float | None
    resets: int  # how often the backend's counters started again from zero (a restart)
    drift_ratio: float | None

    @property
    def warning(self) -> bool:
        """Over the 1 % drift, or nothing to compare the ledger with."""
        return self.drift_ratio is None or self.drift_ratio > DRIFT_WARNING

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "warning": self.warning}


def drift_ratio(backend_tokens: float, ledger_tokens: float) -> float:
    """``|backend - ledger| / max(backend, ledger)``: 0 when they agree (or both are zero), 1 when one
    side counted nothing at all."""
    larger = max(backend_tokens, ledger_tokens)
    return abs(backend_tokens - ledger_tokens) / larger if larger > 0 else 0.0


async def reconcile(
    ledger: LedgerBackendTotals,
    readings: BackendReadings,
    since: float,
    until: float,
    served_names: Mapping[str, str],
) -> list[Reconciliation]:
    """Every backend and model that has readings or ledger records in the period, in order.

    ``served_names`` maps the ledger's (public) model names to the names the backends serve them under
    (their ``model_name`` label); a model not in it is taken to be served under its own name. A backend
    whose counters name one model only is one vLLM server (it labels every name it serves with its first
    one): all its traffic in the ledger counts for that model.
    """
    series = await readings.series(since, until)
    labels: dict[str, set[str]] = {}
    for backend, model in series:
        labels.setdefault(backend, set()).add(model)
    sole = {backend: next(iter(models)) for backend, models in labels.items() if len(models) == 1}

    def _by_served_name(
        totals: Mapping[tuple[str, str | None], tuple[int, int, int]],
    ) -> dict[tuple[str, str], tuple[int, int, int]]:
        merged: dict[tuple[str, str], tuple[int, int, int]] = {}
        for (backend, model), sums in totals.items():
            name = sole.get(backend) or served_names.get(model or "", model or "")
            before = merged.get((backend, name), (0, 0, 0))
            merged[(backend, name)] = (before[0] + sums[0], before[1] + sums[1], before[2] + sums[2])
        return merged

    found: dict[tuple[str, str], Reconciliation] = {}
    windows: dict[tuple[float, float], dict[tuple[str, str], tuple[int, int, int]]] = {}
    for (backend, model), chain in series.items():
        if len(chain) < 2:
            continue
        start, end = chain[0].at, chain[-1].at
        if (start, end) not in windows:  # series read in the same rounds share their window: one query
            windows[(start, end)] = _by_served_name(await ledger.backend_totals(start, end))
        totals = windows[(start, end)]
        prompt, completion, requests = totals.get((backend, model), (0, 0, 0))
        growth = growth_of(chain)
        found[(backend, model)] = Reconciliation(
            backend,
            model,
            start,
            end,
            prompt,
            completion,
            requests,
            growth.prompt_tokens,
            growth.generation_tokens,
            growth.resets,
            drift_ratio(growth.prompt_tokens + growth.generation_tokens, prompt + completion),
        )
    # Traffic the ledger holds for backends whose counters were never read: nothing to compare it with.
    for (backend, model), (prompt, completion, requests) in _by_served_name(
        await ledger.backend_totals(since, until)
    ).items():
        if (backend, model) not in found:
            found[(backend, model)] = Reconciliation(
                backend, model, None, None, prompt, completion, requests, None, None, 0, None
            )
    return [found[key] for key in sorted(found)]
