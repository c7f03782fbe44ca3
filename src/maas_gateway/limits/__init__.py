"""Limits: tiers of request and token windows, checked and counted atomically per user."""

from maas_gateway.limits.charge import TokenCharge
from maas_gateway.limits.headers import rate_limit_headers
from maas_gateway.limits.limiter import Admission, Limiter
from maas_gateway.limits.readings import CounterReading, UsageObserver
from maas_gateway.limits.rules import CounterRef, LimitRule, RuleBook, TierPolicy
from maas_gateway.limits.storage import AdmitResult, Check, InMemoryLimitStorage, LimitStorage

__all__ = [
    "Admission",
    "AdmitResult",
    "Check",
    "CounterReading",
    "CounterRef",
    "InMemoryLimitStorage",
    "LimitRule",
    "LimitStorage",
    "Limiter",
    "RuleBook",
    "TierPolicy",
    "TokenCharge",
    "UsageObserver",
    "rate_limit_headers",
]
