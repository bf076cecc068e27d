"""`ModelResponse` writes exactly the bytes Litestar's own model serialization would."""

from datetime import UTC, datetime

from litestar import MediaType
from litestar.plugins.pydantic import PydanticInitPlugin
from litestar.serialization import encode_json, get_serializer

from contracts import FailureCode, JobError, JobList, JobStatus, JobView, Stage
from edge_worker.http.json_response import ModelResponse

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
        eta_seconds=1.5e-7,
    )
    litestar = get_serializer(PydanticInitPlugin.encoders())
    response = ModelResponse(None)
    for model in (view, JobList(jobs=[view, view], next_cursor="abc")):
        assert response.render(model, MediaType.JSON) == encode_json(model, litestar)


def test_other_content_is_left_to_litestar() -> None:
    response = ModelResponse(None)
    assert response.render({"a": [1, None]}, MediaType.JSON) == b'{"a":[1,null]}'
    assert response.render("text", MediaType.TEXT) == b"text"
