"""Finding a multipart/form-data body's small fields without copying its files.

Only the parts' headers and the named non-file fields are looked at; a file's bytes are searched for
the next boundary (a C-speed scan) but never copied or decoded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from maas_gateway.errors import InvalidRequestError

__all__ = ["FormFields", "boundary_of", "form_fields"]

_BOUNDARY = re.compile(r'boundary="?([^";]{1,200})"?', re.IGNORECASE)
_NAME = re.compile(rb'(?:^|;)\s*name="([^"]*)"', re.IGNORECASE)
_FILENAME = re.compile(rb";\s*filename\*?=", re.IGNORECASE)
_FIELD_BYTES = 1000  # the fields read are names and flags: a bigger one of that name is not one


@dataclass(slots=True)
class FormFields:
    values: dict[str, str]
    spans: dict[str, tuple[int, int]]  # where each value is in the body
    file_bytes: int  # the size of the files' contents together


def boundary_of(content_type: str) -> bytes:
    """The boundary a multipart Content-Type names; a 400 when it is not one."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise InvalidRequestError(
            "This endpoint takes a multipart/form-data body (a `file` and a `model` field); "
            f"the Content-Type was '{content_type[:100]}'.",
            code="invalid_content_type",
        )
    found = _BOUNDARY.search(content_type)
    if found is None:
        raise InvalidRequestError(
            "The multipart Content-Type names no boundary.", code="invalid_content_type"
        )
    return found.group(1).encode("latin-1")


def form_fields(raw: bytes, boundary: bytes, names: tuple[str, ...]) -> FormFields:
    """The values of the non-file fields in ``names``; a 400 saying what is wrong with a broken body."""
    delimiter = b"--" + boundary
    found = FormFields({}, {}, 0)
    position = raw.find(delimiter)
    if position == -1:
        raise _malformed("it has no part")
    while True:
        start = position + len(delimiter)
        if raw.startswith(b"--", start):
            return found  # the closing boundary
        head_end = raw.find(b"\r\n\r\n", start)
        following = raw.find(b"\r\n" + delimiter, head_end + 4) if head_end != -1 else -1
        if following == -1:
            raise _malformed("a part does not end with the boundary")
        head = raw[start:head_end]
        name = _NAME.search(head)
        value_start, value_end = head_end + 4, following
        if _FILENAME.search(head) is not None:
            found.file_bytes += value_end - value_start
        elif name is not None:
            field = name.group(1).decode("latin-1")
            if field in names and value_end - value_start <= _FIELD_BYTES:
                try:
                    found.values[field] = raw[value_start:value_end].decode("utf-8").strip()
                except UnicodeDecodeError:
                    raise _malformed(f"its `{field}` field is not UTF-8") from None
                found.spans[field] = (value_start, value_end)
        position = following + 2


def _malformed(why: str) -> InvalidRequestError:
    return InvalidRequestError(f"The multipart body is malformed: {why}.", code="invalid_multipart")
