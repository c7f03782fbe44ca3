"""One usage record per authenticated request: the unit of chargeback."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

__all__ = ["USAGE_COLUMNS", "UsageRecord"]


@dataclass(slots=True)  # per request: a frozen dataclass costs 4x as much to build
class UsageRecord:
    request_id: str
    created_at: float  # Unix time the request arrived
    user: str
    tier: str
    key_id: str
    model: str | None
    endpoint: str
    status: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    charged_tokens: int
    cost: float
    streamed: bool
    rate_limited: bool
    usage_estimated: bool
    latency_ms: float
    # Admitted, then failed at the gateway or a backend (502, 503, 504, the backends at capacity): the
    # request and its tokens were not charged. Records written before this field read False.
    failed: bool = False
    # The backend broke the stream off mid-way (status 200 sent, then the stream ended without its end):
    # charged for what was delivered, and counted apart (outcome "broken"). Older records read False.
    broken: bool = False
    # The backend that served the request (its base URL, any password masked): reconciliation compares
    # each backend's own token counters with the ledger's totals for it. None: no backend was reached.
    backend: str | None = None
    # The price version the cost was computed at (its effective moment, ISO 8601 UTC); '' when the model
    # has no price. Records written before read ''.
    price_version: str = ""
    team: str = ""  # the team the key was created for; '' for none (and records written before teams)

    @property
    def hour(self) -> int:
        """Hours since the epoch: the bucket that hourly and daily reports group by."""
        return int(self.created_at // 3600)

    def to_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it deep-copies every value and costs ten times as much per record.
        return {name: getattr(self, name) for name in USAGE_COLUMNS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UsageRecord:
        """A record from ``to_dict``'s output; a field added since it was written takes its default (a
        missing field without one raises ``TypeError``)."""
        return cls(**{name: data[name] for name in USAGE_COLUMNS if name in data})


USAGE_COLUMNS = tuple(field.name for field in fields(UsageRecord))
