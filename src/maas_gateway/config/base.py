"""The base of every configuration model."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["Strict"]


class Strict(BaseModel):
    """Unknown fields are mistakes (a typo must not silently disable a limit)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
