"""A picked backend, held for one request: counted in flight until released, and told how it went.

The caller releases it in a ``finally`` (or uses it as a context manager), whatever happens to the
request; releasing twice is harmless, so a cleanup path cannot make the count go wrong. At most one
outcome is reported per lease: the first report wins.
"""

from __future__ import annotations

from types import TracebackType

from maas_gateway.balancing.backend import BackendState
from maas_gateway.balancing.health import FailureKind

__all__ = ["Lease"]


class Lease:
    __slots__ = ("_released", "_reported", "backend")

    def __init__(self, backend: BackendState) -> None:
        self.backend = backend
        self._released = False
        self._reported = False
        backend.begin_request()

    def __repr__(self) -> str:
        return f"Lease({self.backend!r}, released={self._released})"

    @property
    def released(self) -> bool:
        return self._released

    def succeeded(self) -> None:
        """The backend answered without a connection failure or a 5xx (passive health)."""
        if not self._reported:
            self._reported = True
            self.backend.health.passive_success()

    def failed(self, kind: FailureKind) -> None:
        """The connection to the backend failed, or it answered 5xx (passive health)."""
        if not self._reported:
            self._reported = True
            self.backend.health.passive_failure(kind)

    def release(self) -> None:
        """The request is over, however it ended: it is no longer in flight. Calling it again does nothing."""
        if not self._released:
            self._released = True
            self.backend.end_request()

    def __enter__(self) -> Lease:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
