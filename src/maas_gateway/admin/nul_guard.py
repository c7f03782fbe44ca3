"""A NUL character (U+0000) anywhere in an admin or self-service request is refused up front.

PostgreSQL's text columns cannot hold it (asyncpg fails the statement, which was a 500), SQLite and the
in-memory stores would keep it: refusing it before any store sees it gives one answer on all of them. No
name, key label or display text has a use for it. The check runs as a dependency of the whole admin app,
on the path's and the query's parameters and, when the raw body mentions ``\\u0000`` at all, on the
strings of the decoded JSON body (FastAPI has read and cached it by then).
"""

# No `from __future__ import annotations`: FastAPI reads the dependency's annotations as objects.

from typing import Any

import orjson
from fastapi import Request

from maas_gateway.errors import InvalidRequestError

__all__ = ["refuse_nul_characters"]

_NUL = "\x00"
_ESCAPED_NUL = b"\\u0000"  # how JSON writes it: a raw NUL byte is not valid JSON at all


async def refuse_nul_characters(request: Request) -> None:
    for name, value in (*request.path_params.items(), *request.query_params.multi_items()):
        if _NUL in str(value) or _NUL in name:
            _refuse(name)
    if request.method in ("GET", "HEAD"):
        return
    body = await request.body()
    if _ESCAPED_NUL not in body:
        return
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return  # not JSON: the body's validation says so
    found = _field_with_nul(data)
    if found is not None:
        _refuse(found)


def _field_with_nul(data: Any) -> str | None:
    """The top-level field whose value holds a NUL somewhere (in a string or a key), if any; walked
    without recursion, as a body may nest a thousand levels deep."""
    fields = data.items() if isinstance(data, dict) else [("request", data)]
    for field, value in fields:
        if _NUL in field:
            return field
        stack = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                if _NUL in item:
                    return field
            elif isinstance(item, dict):
                if any(_NUL in key for key in item):
                    return field
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
    return None


def _refuse(field: str) -> None:
    raise InvalidRequestError(
        f"`{field}` contains a NUL character (\\u0000), which no name or text here may hold.", param=field
    )
