"""Where a backend connection is in its life: one state instead of a set of booleans."""

from __future__ import annotations

import enum

__all__ = ["AWAITING_HEAD", "CLOSED", "DONE", "IDLE", "RECEIVING", "ConnectionState"]


class ConnectionState(enum.Enum):
    IDLE = "idle"  # open and carrying no request: just connected, or waiting in the pool
    AWAITING_HEAD = "awaiting head"  # a request went out; its status and headers have not arrived
    RECEIVING = "receiving"  # the head arrived; more of the body is to come
    DONE = "done"  # the whole answer arrived; the connection waits to be given back to the pool
    CLOSED = "closed"  # lost, failed or closed by us: never used again


# The states as module constants: on the hot path a global is read in a tenth of an enum member's time.
IDLE = ConnectionState.IDLE
AWAITING_HEAD = ConnectionState.AWAITING_HEAD
RECEIVING = ConnectionState.RECEIVING
DONE = ConnectionState.DONE
CLOSED = ConnectionState.CLOSED
