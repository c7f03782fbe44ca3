"""A model's public name in what the client sees, where its backend wrote the name it serves.

A model configured with a ``served_name`` is asked for by that name, and the backend answers with it:
in the ``model`` of a whole answer and of every stream chunk, and sometimes in an error's message. The
client asked for the public name and must see it back; the served name is an internal detail (often a
path on the model server) and is never shown.

Streams are rewritten with bytes replacements of the exact ``"model":"<served>"`` field, not by parsing
each chunk: a quote inside a JSON string is always escaped, so the pattern can only match the JSON
structure, and its closing quote keeps a served name from matching a longer one. The forms covered are
those model servers' JSON serializers emit: no space after the colon (vLLM's pydantic, orjson, serde,
llama.cpp) or one (Python's ``json``), and non-ASCII characters raw or ``\\u``-escaped. Whole answers
are parsed anyway, so they are re-encoded should none of these forms match.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import orjson

__all__ = ["PublicName", "public_name"]

_ERROR_KEY = b'"error"'  # never inside a JSON string, where its quotes would be escaped


class PublicName:
    """Rewrites one served name to one public name; built once per pair (see ``public_name``)."""

    __slots__ = ("_fields", "_in_strings", "public", "served")

    def __init__(self, served: str, public: str) -> None:
        self.served = served
        self.public = public
        inner = orjson.dumps(public)[1:-1]
        # The served name as it may appear between a JSON string's quotes: raw UTF-8 first (model
        # servers write that), then \u-escaped; the same for an ASCII name.
        forms = dict.fromkeys((orjson.dumps(served)[1:-1], json.dumps(served).encode()[1:-1]))
        self._in_strings = tuple((form, inner) for form in forms)
        self._fields = tuple(
            (b'"model"' + separator + b'"' + form + b'"', b'"model"' + separator + b'"' + inner + b'"')
            for form in forms
            for separator in (b":", b": ")
        )

    def answer(self, body: bytes, payload: dict[str, Any]) -> bytes:
        """A whole JSON answer (``payload`` is ``body`` parsed) with its ``model`` mapped back."""
        if payload.get("model") != self.served:
            return body
        renamed = self._replace_fields(body)
        if renamed == body:  # written in a form not covered: re-encode what was parsed
            payload["model"] = self.public
            renamed = orjson.dumps(payload)
        return renamed

    def events(self, events: bytes) -> bytes:
        """One or more complete SSE events: each chunk's ``model`` and any error's text mapped back."""
        events = self._replace_fields(events)
        # find(), not `in`: CPython's bytes `in` first tries the operand as an int and clears the
        # TypeError, which costs three times the search on a chunk of a few hundred bytes.
        if events.find(_ERROR_KEY) != -1:
            # An error reported in-band; its message may name the served model anywhere. Other events
            # are left alone: a model's generated text is the client's, whatever names it holds.
            parts = events.split(b"\n\n")
            events = b"\n\n".join(self._in_text(part) if _ERROR_KEY in part else part for part in parts)
        return events

    def message(self, text: str) -> str:
        """A backend's error message or code, decoded, with every mention of the served name mapped."""
        return text.replace(self.served, self.public)

    def _replace_fields(self, data: bytes) -> bytes:
        for old, new in self._fields:
            data = data.replace(old, new)
        return data

    def _in_text(self, data: bytes) -> bytes:
        for old, new in self._in_strings:
            data = data.replace(old, new)
        return data


def public_name(served: str, public: str) -> PublicName | None:
    """The rewriting for a model, or None when it serves its public name (then nothing is rewritten).

    Called per request: a model without a ``served_name`` costs one string comparison.
    """
    return None if served == public else _rewriting(served, public)


@lru_cache(maxsize=1024)  # a reload may bring new pairs; old ones age out
def _rewriting(served: str, public: str) -> PublicName:
    return PublicName(served, public)
