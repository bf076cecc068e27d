"""`ModelResponse` writes exactly the bytes Litestar's own model serialization would."""

import asyncio
from datetime import UTC, datetime

import pytest
from litestar import MediaType
from litestar.exceptions import ImproperlyConfiguredException
from litestar.plugins.pydantic import PydanticInitPlugin
from litestar.response.base import ASGIResponse
from litestar.serialization import encode_json, get_serializer
from litestar.testing import RequestFactory
from litestar.types import ASGIApp, Message

from contracts import FailureCode, JobError, JobList, JobStatus, JobView, Stage
from edge_worker.http.json_response import ModelBody, ModelResponse

NOW = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


def test_models_render_as_litestar_renders_them() -> None:
    view = JobView(
        job_id="j",
        status=JobStatus.FAILED,
        progress=0.1 + 0.2,
        stage=Stage.GENERATING,
        created_at=NOW,
        updated_at=NOW,
        completed_at=NOW,
        result_url="http://a/b?c=d&e=%2F",
        attempts=2,
        error=JobError(code=FailureCode.GENERATION_FAILED, message='é"<\u2028\x01'),
        queue_position=3,
        eta_seconds=17,
    )
    litestar = get_serializer(PydanticInitPlugin.encoders())
    response = ModelResponse(None)
    for model in (view, JobList(jobs=[view, view], next_cursor="abc")):
        assert response.render(model, MediaType.JSON) == encode_json(model, litestar)


def test_other_content_is_left_to_litestar() -> None:
    response = ModelResponse(None)
    assert response.render({"a": [1, None]}, MediaType.JSON) == b'{"a":[1,null]}'
    assert response.render("text", MediaType.TEXT) == b"text"


def _messages(app: ASGIApp) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    asyncio.run(app(RequestFactory().get().scope, receive, send))
    return sent


def test_a_plain_model_goes_out_as_litestar_would_send_it() -> None:
    view = JobList(jobs=[], next_cursor="abc")
    request = RequestFactory().get()
    fast = ModelResponse(view, status_code=201).to_asgi_response(None, request)
    assert isinstance(fast, ModelBody)
    body = encode_json(view, get_serializer(PydanticInitPlugin.encoders()))
    litestar = ASGIResponse(body=body, media_type=MediaType.JSON, status_code=201)
    assert _messages(fast) == _messages(litestar)


def test_extra_headers_take_litestar_path() -> None:
    view = JobList(jobs=[], next_cursor=None)
    request = RequestFactory().get()
    for response, extra in (
        (ModelResponse(view, headers={"x-a": "1"}), {}),
        (ModelResponse(view), {"x-a": "1"}),
    ):
        app = response.to_asgi_response(None, request, headers=extra)
        assert not isinstance(app, ModelBody)
        assert (b"x-a", b"1") in app.encode_headers()
    with pytest.raises(ImproperlyConfiguredException):
        ModelResponse(view, status_code=204).to_asgi_response(None, request)
