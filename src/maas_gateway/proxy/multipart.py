"""Multipart form bodies (audio uploads): their ``model`` and ``stream`` fields, and the served name put in.

The body is read with the same limit as any other, enforced while it arrives (``http.asgi.read_body``):
an upload larger than the limit is answered 413 as soon as it passes it, never buffered whole. The file's
bytes go to the backend as they came (http/multipart_fields.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from maas_gateway.http.asgi import Receive, Scope, read_body, request_header
from maas_gateway.http.multipart_fields import boundary_of, form_fields
from maas_gateway.proxy.body_parser import ParsedBody
from maas_gateway.proxy.schemas import FormRequest
from maas_gateway.tokens import PromptSize

__all__ = ["Form", "read_form"]


@dataclass(slots=True)
class Form:
    raw: bytes
    parsed: ParsedBody
    content_type: str  # the client's, with its boundary: the backend needs it to read the body
    boundary: bytes
    model_span: tuple[int, int] | None  # where the `model` field's value is in ``raw``

    def for_model(self, served: str) -> bytes:
        """The body with ``served`` as its ``model`` (the client's bytes when they already say so)."""
        name = served.encode()
        if self.model_span is not None:
            start, end = self.model_span
            if self.raw[start:end] == name:
                return self.raw
            return self.raw[:start] + name + self.raw[end:]
        # No `model` field (the path prefix named the model): one is added before the closing boundary.
        closing = self.raw.rfind(b"--" + self.boundary + b"--")
        part = b"--" + self.boundary + b'\r\nContent-Disposition: form-data; name="model"\r\n\r\n'
        return self.raw[:closing] + part + name + b"\r\n" + self.raw[closing:]


async def read_form(scope: Scope, receive: Receive, limit: int) -> Form:
    """Read a multipart body of at most ``limit`` bytes; raise a 400 saying what is wrong with it."""
    content_type = request_header(scope, b"content-type") or ""
    boundary = boundary_of(content_type)  # checked before a byte of the body is read
    raw = await read_body(scope, receive, limit)
    fields = form_fields(raw, boundary, ("model", "stream"))
    model = fields.values.get("model") or None
    stream = fields.values.get("stream", "").lower() == "true"
    request = FormRequest.model_construct(model=model, stream=stream, stream_options=None)
    parsed = ParsedBody({}, request, PromptSize(0, 0, 0))
    return Form(raw, parsed, content_type, boundary, fields.spans.get("model"))
