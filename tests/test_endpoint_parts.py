"""The inference API's small parts on their own: the endpoint table's prefix split, stream usage in each
API's events, multipart fields, credential headers and Anthropic's error shape."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from maas_gateway.auth.credentials import request_credential
from maas_gateway.errors import AuthenticationError, BackendError, InvalidRequestError, RateLimitError
from maas_gateway.http.multipart_fields import form_fields
from maas_gateway.proxy.body_parser import ParsedBody
from maas_gateway.proxy.endpoints import ENDPOINTS, ErrorShape, StreamEvents, split_prefix
from maas_gateway.proxy.error_shapes import error_body
from maas_gateway.proxy.exchange import Usage
from maas_gateway.proxy.header_names import HeaderRole, header_role
from maas_gateway.proxy.multipart import Form
from maas_gateway.proxy.schemas import FormRequest
from maas_gateway.proxy.sse import SSEFollower
from maas_gateway.tokens import PromptSize


def _event(kind: str, **data: object) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **data}) + b"\n\n"


@pytest.mark.parametrize(
    ("path", "split"),
    [
        ("/v1/chat/completions", (None, "/v1/chat/completions")),
        ("/v2/rerank", (None, "/v2/rerank")),
        ("/tokenize", (None, "/tokenize")),
        ("/m/tokenize", ("m", "/tokenize")),
        ("/m/v2/rerank", ("m", "/v2/rerank")),
        ("/m/v1/responses", ("m", "/v1/responses")),
        ("/m/classify", (None, "/m/classify")),
        ("/health", (None, "/health")),
    ],
)
def test_split_prefix(path: str, split: tuple[str | None, str]) -> None:
    """A model's prefix is split off the table's paths, under /v1 and /v2, and nothing else."""
    assert split_prefix(path) == split


def test_split_prefix_knows_extra_paths() -> None:
    """An operator's extra path is found under a prefix too."""
    assert split_prefix("/m/classify", frozenset({"/classify"})) == ("m", "/classify")


def test_every_row_is_consistent() -> None:
    """Each row is found by its own path, streams only where its events are known, and reserve mode
    names a field only where the endpoint generates output."""
    for path, endpoint in ENDPOINTS.items():
        assert endpoint.path == path
        assert endpoint.stream_options <= (endpoint.streams is StreamEvents.OPENAI)
        if endpoint.max_tokens_field is not None:
            assert endpoint.streams is not None


def test_responses_stream_usage_and_id() -> None:
    """The Responses API's id comes from `response.created`, its usage from `response.completed`."""
    follower = SSEFollower(client_wants_usage=False, events=StreamEvents.RESPONSE)
    events = follower.feed(
        _event("response.created", response={"id": "resp_1", "usage": None})
        + _event("response.output_text.delta", delta="Hel")
        + _event("response.output_text.delta", delta="lo")
        + _event(
            "response.completed", response={"id": "resp_1", "usage": {"input_tokens": 4, "output_tokens": 2}}
        )
    )
    assert len(events) == 4  # every event reaches the client
    assert follower.response_id == "resp_1"
    assert follower.final_usage() == Usage(4, 2)
    assert follower.content_chunks == 2


def test_responses_stream_cut_off_has_no_usage_of_its_own() -> None:
    """A Responses stream that ends before `response.completed` reports no usage (the caller estimates)."""
    follower = SSEFollower(client_wants_usage=False, events=StreamEvents.RESPONSE)
    follower.feed(_event("response.output_text.delta", delta="x"))
    assert follower.final_usage() is None
    assert follower.content_chars == 1


def test_messages_stream_usage() -> None:
    """Input from `message_start`, output from the last `message_delta` (counts so far, not added up)."""
    follower = SSEFollower(client_wants_usage=False, events=StreamEvents.MESSAGE)
    follower.feed(_event("message_start", message={"usage": {"input_tokens": 9, "output_tokens": 1}}))
    follower.feed(_event("content_block_delta", delta={"type": "text_delta", "text": "abc"}))
    follower.feed(_event("message_delta", usage={"output_tokens": 3}))
    follower.feed(_event("message_delta", usage={"output_tokens": 5}))
    assert follower.final_usage() == Usage(9, 5)


def test_messages_stream_cut_off_is_estimated_from_what_came() -> None:
    """Cut off before any `message_delta`: the input as reported, the output as generated so far."""
    follower = SSEFollower(client_wants_usage=False, events=StreamEvents.MESSAGE)
    follower.feed(_event("message_start", message={"usage": {"input_tokens": 9, "output_tokens": 0}}))
    for _ in range(3):
        follower.feed(_event("content_block_delta", delta={"type": "text_delta", "text": "word "}))
    assert follower.final_usage() == Usage(9, 4, estimated=True)


def test_malformed_typed_events_are_passed_on_and_ignored() -> None:
    """Events with wrong types where usage should be count nothing and are still forwarded."""
    follower = SSEFollower(client_wants_usage=False, events=StreamEvents.MESSAGE)
    out = follower.feed(
        _event("message_start", message="nope")
        + _event("message_delta", usage={"output_tokens": -1})
        + _event("message_delta", usage=[1])
        + b"data: [1, 2]\n\n"
    )
    assert len(out) == 4
    assert follower.final_usage() is None


BODY = (
    b'--B\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'
    b'RIFF name="model"\r\n\r\nnot-this\r\n'  # a file that looks like a field inside
    b'\r\n--B\r\nContent-Disposition: form-data; name="model"\r\n\r\nm1\r\n--B--\r\n'
)


def test_form_fields_skip_the_files() -> None:
    """The `model` field is found; the text inside the file is never read as a field."""
    fields = form_fields(BODY, b"B", ("model",))
    assert fields.values == {"model": "m1"}
    assert fields.file_bytes == len(b'RIFF name="model"\r\n\r\nnot-this\r\n')


def test_form_gets_the_served_name_replaced_or_added() -> None:
    """The form's `model` becomes the served name; a form without one gets one before its end."""
    parsed = ParsedBody({}, FormRequest.model_construct(), PromptSize(0, 0, 0))
    fields = form_fields(BODY, b"B", ("model",))
    replaced = Form(BODY, parsed, "multipart/form-data; boundary=B", b"B", fields.spans["model"])
    assert form_fields(replaced.for_model("served"), b"B", ("model",)).values == {"model": "served"}
    assert replaced.for_model("m1") is BODY
    without = BODY.replace(b'name="model"\r\n\r\nm1', b'name="other"\r\n\r\nm1')
    added = Form(without, parsed, "", b"B", None).for_model("served")
    assert form_fields(added, b"B", ("model", "other")).values == {"model": "served", "other": "m1"}


@given(st.binary(max_size=300))
def test_form_fields_never_fail_but_with_a_400(raw: bytes) -> None:
    """Any bytes at all: the fields, or a 400 saying the body is malformed, never another error."""
    codes = []
    try:
        form_fields(b"--B\r\n" + raw, b"B", ("model",))
    except InvalidRequestError as error:
        codes.append(error.code)
    assert codes in ([], ["invalid_multipart"])


def test_credentials_from_either_header() -> None:
    """`Authorization` wins; `x-api-key` alone is used as it is; an empty one is 401."""
    assert request_credential("Bearer a-key-1", "b-key-2") == "a-key-1"
    assert request_credential(None, " b-key-2 ") == "b-key-2"
    with pytest.raises(AuthenticationError):
        request_credential(None, "  ")
    with pytest.raises(AuthenticationError):
        request_credential(None, None)


@pytest.mark.parametrize("name", [b"x-api-key", b"x_api_key", b"X.API.KEY", b"api-key", b"api_key"])
def test_key_headers_are_never_forwarded(name: bytes) -> None:
    """However a key header is spelled, it is dropped on the way to a backend."""
    assert header_role(name.lower())[0] is HeaderRole.DROP


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (InvalidRequestError("Bad."), "invalid_request_error"),
        (AuthenticationError("Who."), "authentication_error"),
        (RateLimitError("Slow.", retry_after_seconds=3), "rate_limit_error"),
        (BackendError("Broke."), "api_error"),
    ],
)
def test_anthropic_error_shape(error: Exception, kind: str) -> None:
    """Anthropic's body: `type: error` and the error's type by status, with the same message."""
    assert isinstance(error, InvalidRequestError | AuthenticationError | RateLimitError | BackendError)
    body = orjson.loads(error_body(error, ErrorShape.ANTHROPIC))
    assert body == {"type": "error", "error": {"type": kind, "message": error.message}}
    assert orjson.loads(error_body(error, ErrorShape.OPENAI))["error"]["message"] == error.message
