"""`JobRunner.run`: one message end to end against a fake queue, edge and storage."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from contracts import Quality, Resolution, Stage
from gpu_agent.runner import INTERNAL_ERROR_MESSAGE, SHUTDOWN_MESSAGE, Outcome
from infinitetalk.engine import CancelledError, EngineError, InvalidInputError

from .conftest import (
    AGENT_TOKEN,
    JOB_ID,
    PNG,
    VIDEO,
    WAV,
    FakeCloud,
    FakeEngine,
    FakeProbes,
    envelope,
    pulled,
)


def _progress_values(cloud: FakeCloud) -> list[float]:
    return [body["progress"] for body in cloud.bodies("progress")]


def test_happy_path_claims_acks_downloads_uploads_and_completes(
    cloud: FakeCloud, make_runner: Any, fake_probes: FakeProbes, work_dir: Path
) -> None:
    engine = FakeEngine()
    outcome = make_runner(engine).run(pulled())

    assert outcome is Outcome.COMPLETED
    kinds = [k for k in cloud.kinds() if k != "progress"]
    assert kinds == ["claim", "ack", "get", "get", "put", "complete"]
    assert cloud.kinds().index("progress") < cloud.kinds().index("get")  # first report first

    claim = cloud.calls[0]
    assert claim.url == f"http://edge.test/agent/jobs/{JOB_ID}/claim"
    assert claim.headers["authorization"] == f"Bearer {AGENT_TOKEN}"
    assert claim.body == {"agent_id": "agent-1", "lease_id": "lease-1"}
    assert cloud.bodies("ack") == [{"acks": [{"lease_id": "lease-1"}], "retries": []}]

    gets = [call for call in cloud.calls if call.kind == "get"]
    assert gets[0].url == "http://blobs.test/inputs/image.png?X-Amz-Signature=img"
    assert gets[1].url == "http://edge.test/blobs/audio.wav?sig=aud"  # resolved against EDGE_URL
    assert all("authorization" not in call.headers for call in gets)

    request = engine.requests[0]
    assert request.image_path.name == "image.png" and request.audio_path.name == "audio.wav"
    assert request.prompt == "a person talking"
    assert request.resolution is Resolution.P480 and request.seed == 7
    assert request.quality is Quality.STANDARD
    assert [kind for kind, _ in fake_probes.seen] == ["image", "audio", "video"]

    put = next(call for call in cloud.calls if call.kind == "put")
    assert cloud.uploads["/videos/out.mp4"] == VIDEO
    assert put.headers["content-type"] == "video/mp4"
    assert put.headers["content-length"] == str(len(VIDEO))
    assert "authorization" not in put.headers

    progress = _progress_values(cloud)
    assert progress == sorted(progress) and progress[0] == 0.0
    assert all(0 <= value <= 100 for value in progress)
    assert cloud.bodies("progress")[0] == {
        "claim_token": "claim-tok",
        "progress": 0.0,
        "stage": "downloading",
        "eta_seconds": None,
    }
    assert cloud.bodies("complete") == [
        {
            "claim_token": "claim-tok",
            "result": {
                "size_bytes": len(VIDEO),
                "duration_seconds": 2.0,
                "width": 64,
                "height": 48,
                "engine": "preview",
            },
        }
    ]
    assert list(work_dir.iterdir()) == []  # the per-job workdir is gone
    assert not engine.workdirs[0].exists()


def test_progress_sent_to_the_edge_is_monotonic_and_follows_stages(
    cloud: FakeCloud, make_runner: Any
) -> None:
    # The engine goes back (40 after 60): the agent must never report a lower value.
    steps = [
        (10.0, Stage.GENERATING, 9.0),
        (60.0, Stage.GENERATING, 4.0),
        (40.0, Stage.ENCODING, 2.0),
        (100.0, Stage.ENCODING, 0.0),
    ]
    assert make_runner(FakeEngine(steps)).run(pulled()) is Outcome.COMPLETED
    bodies = cloud.bodies("progress")
    values = [body["progress"] for body in bodies]
    assert values == sorted(values)
    order = [Stage.DOWNLOADING, Stage.GENERATING, Stage.ENCODING, Stage.UPLOADING]
    stages = [Stage(body["stage"]) for body in bodies]
    assert [order.index(stage) for stage in stages] == sorted(order.index(s) for s in stages)
    for body in bodies:
        if body["stage"] in ("generating", "encoding"):
            assert 5.0 <= body["progress"] <= 95.0
        if body["stage"] == "uploading":
            assert body["progress"] >= 95.0


def test_heartbeat_reports_while_the_engine_is_silent(cloud: FakeCloud, make_runner: Any) -> None:
    cloud.heartbeat_interval = 0.02
    engine = FakeEngine(steps=[(50.0, Stage.GENERATING, None)], silent_for=0.25)
    assert make_runner(engine).run(pulled()) is Outcome.COMPLETED
    generating = [b for b in cloud.bodies("progress") if b["progress"] == 50.0]
    assert len(generating) >= 3  # the same state re-sent as a heartbeat


@pytest.mark.parametrize(
    ("reply", "name"),
    [
        (lambda r, b: envelope(409, "CONFLICT"), "conflict"),
        (lambda r, b: envelope(404, "JOB_NOT_FOUND"), "gone"),
    ],
)
def test_unclaimable_job_is_acked_without_work(
    cloud: FakeCloud, make_runner: Any, reply: Any, name: str
) -> None:
    cloud.replies["claim"] = reply
    engine = FakeEngine()
    assert make_runner(engine).run(pulled()) is Outcome.SKIPPED, name
    assert cloud.kinds() == ["claim", "ack"]
    assert cloud.bodies("ack") == [{"acks": [{"lease_id": "lease-1"}], "retries": []}]
    assert engine.requests == []


@pytest.mark.parametrize(
    ("reply", "tries"),
    [
        (lambda r, b: envelope(500, "INTERNAL_ERROR"), 6),
        (lambda r, b: envelope(404, "NOT_FOUND"), 1),  # a missing route must not drop jobs
        (lambda r, b: envelope(401, "UNAUTHORIZED"), 1),  # final: asking again cannot help
        (lambda r, b: (_ for _ in ()).throw(httpx.ConnectError("refused", request=r)), 6),
    ],
    ids=["500", "route-404", "401", "network"],
)
def test_claim_error_hands_the_message_back_without_ack(
    cloud: FakeCloud, make_runner: Any, reply: Any, tries: int
) -> None:
    cloud.replies["claim"] = reply
    runner = make_runner(claim_retry_delay_seconds=12)
    assert runner.run(pulled()) is Outcome.REQUEUED
    assert cloud.kinds() == ["claim"] * tries + ["ack"]
    assert cloud.bodies("ack") == [
        {"acks": [], "retries": [{"lease_id": "lease-1", "delay_seconds": 12}]}
    ]


def test_claim_error_survives_a_failing_retry_call(cloud: FakeCloud, make_runner: Any) -> None:
    cloud.replies["claim"] = lambda r, b: envelope(503, "STORAGE_ERROR")
    cloud.replies["ack"] = lambda r, b: httpx.Response(500, json={"success": False})
    assert make_runner().run(pulled()) is Outcome.REQUEUED


@pytest.mark.parametrize(
    "message",
    [
        pulled(body=base64.b64encode(b"not json").decode()),
        pulled(body="%%%not-base64%%%"),
        pulled(body=base64.b64encode(b'{"v":1}').decode()),
        pulled(
            body='{"v":2,"job_id":"x","enqueued_at":"2025-01-01T00:00:00Z"}',
            metadata={"CF-Content-Type": "text"},
        ),
        pulled(body=base64.b64encode(b"\xff\xfe").decode()),
    ],
    ids=["not-json", "not-base64", "no-job-id", "unknown-version", "not-utf8"],
)
def test_poison_message_is_acked_and_skipped(
    cloud: FakeCloud, make_runner: Any, message: Any
) -> None:
    assert make_runner().run(message) is Outcome.SKIPPED
    assert cloud.kinds() == ["ack"]


def test_text_message_is_accepted(cloud: FakeCloud, make_runner: Any) -> None:
    message = pulled(
        body=f'{{"v":1,"job_id":"{JOB_ID}","enqueued_at":"2025-01-01T00:00:00Z"}}',
        metadata={"CF-Content-Type": "text"},
    )
    assert make_runner().run(message) is Outcome.COMPLETED


def test_poison_message_survives_a_failing_ack(cloud: FakeCloud, make_runner: Any) -> None:
    cloud.replies["ack"] = lambda r, b: httpx.Response(502, text="bad gateway")
    assert make_runner().run(pulled(body="garbage")) is Outcome.SKIPPED


def test_failed_ack_after_claim_does_not_stop_the_job(cloud: FakeCloud, make_runner: Any) -> None:
    cloud.replies["ack"] = lambda r, b: httpx.Response(
        200, json={"success": False, "errors": [{"code": 10000, "message": "auth"}]}
    )
    assert make_runner().run(pulled()) is Outcome.COMPLETED


def _fail_body(cloud: FakeCloud) -> dict[str, Any]:
    bodies = cloud.bodies("fail")
    assert len(bodies) == 1
    assert "complete" not in cloud.kinds() and "put" not in cloud.kinds()
    return bodies[0]


def test_undecodable_input_fails_the_job_not_retryable(
    cloud: FakeCloud, make_runner: Any, fake_probes: FakeProbes, work_dir: Path
) -> None:
    fake_probes.audio_error = InvalidInputError("audio could not be decoded")
    engine = FakeEngine()
    assert make_runner(engine).run(pulled()) is Outcome.FAILED
    assert _fail_body(cloud) == {
        "claim_token": "claim-tok",
        "code": "INVALID_INPUT",
        "message": "audio could not be decoded",
        "retryable": False,
    }
    assert engine.requests == []
    assert list(work_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("error", "code", "retryable"),
    [
        (
            EngineError("GPU_OUT_OF_MEMORY", "out of memory", retryable=True),
            "GPU_OUT_OF_MEMORY",
            True,
        ),
        (EngineError("TIMEOUT", "took too long", retryable=False), "TIMEOUT", False),
        (EngineError("WEIRD_CODE", "strange", retryable=True), "GENERATION_FAILED", True),
        (InvalidInputError("no face found"), "INVALID_INPUT", False),
    ],
)
def test_engine_error_is_reported_with_its_code_and_retryable_flag(
    cloud: FakeCloud, make_runner: Any, error: EngineError, code: str, retryable: bool
) -> None:
    assert make_runner(FakeEngine(error=error)).run(pulled()) is Outcome.FAILED
    body = _fail_body(cloud)
    assert (body["code"], body["retryable"], body["message"]) == (code, retryable, error.message)


def test_a_quality_the_engine_cannot_make_fails_before_any_download(
    cloud: FakeCloud, make_runner: Any, work_dir: Path
) -> None:
    cloud.quality = "fast"
    why = "this agent has no distilled LoRA (INFINITETALK_FAST_LORA is blank)"
    engine = FakeEngine(unavailable={Quality.FAST: why})
    assert make_runner(engine).run(pulled()) is Outcome.FAILED
    assert _fail_body(cloud) == {
        "claim_token": "claim-tok",
        "code": "QUALITY_UNAVAILABLE",
        "message": f"quality=fast is not available: {why}; submit with quality=standard",
        "retryable": False,
    }
    assert "get" not in cloud.kinds() and engine.requests == []
    assert list(work_dir.iterdir()) == []


def test_the_jobs_quality_reaches_the_engine(cloud: FakeCloud, make_runner: Any) -> None:
    cloud.quality = "fast"
    engine = FakeEngine(unavailable={Quality.STANDARD: "never asked"})
    assert make_runner(engine).run(pulled()) is Outcome.COMPLETED
    assert engine.requests[0].quality is Quality.FAST


def test_failure_messages_do_not_show_agent_paths(
    cloud: FakeCloud, make_runner: Any, fake_probes: FakeProbes
) -> None:
    def refuse(path: Path) -> object:
        raise InvalidInputError(f"cannot identify image file '{path}'")

    fake_probes._image = refuse  # type: ignore[method-assign]
    assert make_runner().run(pulled()) is Outcome.FAILED
    assert _fail_body(cloud)["message"] == "cannot identify image file 'image.png'"


def test_long_engine_message_is_truncated(cloud: FakeCloud, make_runner: Any) -> None:
    error = EngineError("GENERATION_FAILED", "x" * 5000)
    assert make_runner(FakeEngine(error=error)).run(pulled()) is Outcome.FAILED
    assert len(_fail_body(cloud)["message"]) == 2000


def test_unexpected_exception_is_internal_error_retryable(
    cloud: FakeCloud, make_runner: Any, work_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = FakeEngine(error=RuntimeError("secret detail /opt/model"))
    assert make_runner(engine).run(pulled()) is Outcome.FAILED
    assert _fail_body(cloud) == {
        "claim_token": "claim-tok",
        "code": "INTERNAL_ERROR",
        "message": INTERNAL_ERROR_MESSAGE,
        "retryable": True,
    }
    assert "secret detail" in caplog.text  # traceback only in the log
    assert list(work_dir.iterdir()) == []


def test_cancel_requested_in_heartbeat_stops_the_engine(
    cloud: FakeCloud, make_runner: Any, work_dir: Path
) -> None:
    def reply(request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        return httpx.Response(200, json={"cancel_requested": body["stage"] == "generating"})

    cloud.replies["progress"] = reply
    engine = FakeEngine(
        steps=[(1.0, Stage.GENERATING, None)], wait_for_cancel=5.0, error=CancelledError()
    )
    assert make_runner(engine).run(pulled()) is Outcome.CANCELLED
    assert engine.saw_cancel
    kinds = cloud.kinds()
    assert "put" not in kinds and "complete" not in kinds and "fail" not in kinds
    assert list(work_dir.iterdir()) == []


def test_engine_returning_after_cancel_is_not_uploaded(cloud: FakeCloud, make_runner: Any) -> None:
    cloud.replies["progress"] = lambda r, b: httpx.Response(
        200, json={"cancel_requested": b["stage"] == "generating"}
    )
    engine = FakeEngine(steps=[(1.0, Stage.GENERATING, None)], wait_for_cancel=5.0)
    assert make_runner(engine).run(pulled()) is Outcome.CANCELLED
    assert engine.saw_cancel
    assert not {"put", "complete", "fail"} & set(cloud.kinds())


@pytest.mark.parametrize("error", [RuntimeError("x"), EngineError("GENERATION_FAILED", "x")])
def test_engine_error_after_cancel_is_not_reported(
    cloud: FakeCloud, make_runner: Any, error: Exception
) -> None:
    cloud.replies["progress"] = lambda r, b: httpx.Response(
        200, json={"cancel_requested": b["stage"] == "generating"}
    )
    engine = FakeEngine(steps=[(1.0, Stage.GENERATING, None)], wait_for_cancel=5.0, error=error)
    assert make_runner(engine).run(pulled()) is Outcome.CANCELLED
    assert "fail" not in cloud.kinds()


def test_stale_claim_on_progress_stops_the_job(cloud: FakeCloud, make_runner: Any) -> None:
    def reply(request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        if body["stage"] == "generating":
            return envelope(409, "CONFLICT", "stale claim token")
        return httpx.Response(200, json={"cancel_requested": False})

    cloud.replies["progress"] = reply
    engine = FakeEngine(
        steps=[(1.0, Stage.GENERATING, None)], wait_for_cancel=5.0, error=CancelledError()
    )
    assert make_runner(engine).run(pulled()) is Outcome.CANCELLED
    assert engine.saw_cancel
    assert not {"put", "complete", "fail"} & set(cloud.kinds())


def test_cancel_before_download_skips_everything(cloud: FakeCloud, make_runner: Any) -> None:
    cloud.replies["progress"] = lambda r, b: httpx.Response(200, json={"cancel_requested": True})
    engine = FakeEngine()
    assert make_runner(engine).run(pulled()) is Outcome.CANCELLED
    assert engine.requests == []
    assert cloud.kinds() == ["claim", "ack", "progress"]


def test_cancel_arriving_during_upload_prevents_complete(
    cloud: FakeCloud, make_runner: Any
) -> None:
    cloud.replies["progress"] = lambda r, b: httpx.Response(
        200, json={"cancel_requested": b["stage"] == "uploading"}
    )
    asked = threading.Event()
    cloud.on_call = lambda call: (
        asked.set() if call.kind == "progress" and call.body["stage"] == "uploading" else None
    )

    def put(request: httpx.Request, body: Any) -> httpx.Response:
        assert asked.wait(5)  # the heartbeat's report is in flight; its reply cancels
        return httpx.Response(200)

    cloud.replies["put"] = put
    # The reply lands while the body streams (the upload aborts) or right after it (the
    # complete is skipped); either way the job is dropped.
    assert make_runner().run(pulled()) is Outcome.CANCELLED
    assert "complete" not in cloud.kinds() and "fail" not in cloud.kinds()


def test_download_over_the_cap_fails_the_job_as_invalid_input(
    cloud: FakeCloud, make_runner: Any
) -> None:
    cloud.blobs["/blobs/audio.wav"] = WAV + b"\x00" * 1000
    engine = FakeEngine()
    assert make_runner(engine, max_audio_bytes=500).run(pulled()) is Outcome.FAILED
    body = _fail_body(cloud)
    assert (body["code"], body["retryable"]) == ("INVALID_INPUT", False)
    assert "audio" in body["message"]
    assert engine.requests == []


def test_download_http_error_is_a_retryable_storage_error(
    cloud: FakeCloud, make_runner: Any
) -> None:
    del cloud.blobs["/inputs/image.png"]
    assert make_runner().run(pulled()) is Outcome.FAILED
    body = _fail_body(cloud)
    assert (body["code"], body["retryable"]) == ("STORAGE_ERROR", True)
    assert "sig" not in body["message"] and "404" in body["message"]
    assert cloud.kinds().count("get") == 1  # a 404 is final: not retried


def test_upload_error_is_a_retryable_storage_error(cloud: FakeCloud, make_runner: Any) -> None:
    cloud.replies["put"] = lambda r, b: httpx.Response(403)
    assert make_runner().run(pulled()) is Outcome.FAILED
    body = cloud.bodies("fail")[0]
    assert (body["code"], body["retryable"]) == ("STORAGE_ERROR", True)
    assert "complete" not in cloud.kinds()
    assert cloud.kinds().count("put") == 1  # an expired signature is final: not retried


@pytest.mark.parametrize(
    "video",
    [
        {"duration_seconds": 0.0, "width": 64, "height": 48},
        {"duration_seconds": 2.0, "width": 0, "height": 48},
    ],
)
def test_broken_output_is_not_uploaded(
    cloud: FakeCloud, make_runner: Any, fake_probes: FakeProbes, video: dict[str, Any]
) -> None:
    from types import SimpleNamespace

    fake_probes.video = SimpleNamespace(**video)
    assert make_runner().run(pulled()) is Outcome.FAILED
    body = _fail_body(cloud)
    assert (body["code"], body["retryable"]) == ("GENERATION_FAILED", True)


def test_undecodable_output_is_not_uploaded(
    cloud: FakeCloud, make_runner: Any, fake_probes: FakeProbes
) -> None:
    fake_probes.video_error = InvalidInputError("moov atom not found")
    assert make_runner().run(pulled()) is Outcome.FAILED
    assert _fail_body(cloud)["code"] == "GENERATION_FAILED"


def test_empty_output_is_not_uploaded(cloud: FakeCloud, make_runner: Any) -> None:
    assert make_runner(FakeEngine(output=b"")).run(pulled()) is Outcome.FAILED
    assert _fail_body(cloud)["code"] == "GENERATION_FAILED"


def test_complete_is_retried_on_transient_errors(
    cloud: FakeCloud, make_runner: Any, sleeps: list[float]
) -> None:
    answers = iter([envelope(503, "STORAGE_ERROR"), httpx.Response(200, json={})])
    cloud.replies["complete"] = lambda r, b: next(answers)
    assert make_runner().run(pulled()) is Outcome.COMPLETED
    assert cloud.kinds().count("complete") == 2
    assert sleeps == [1.0]


def test_complete_that_never_gets_through_is_reported_as_failed(
    cloud: FakeCloud, make_runner: Any, sleeps: list[float]
) -> None:
    cloud.replies["complete"] = lambda r, b: envelope(500, "INTERNAL_ERROR")
    assert make_runner().run(pulled()) is Outcome.FAILED
    assert cloud.kinds().count("complete") == 6
    assert sleeps == [1.0, 2.0, 4.0, 8.0, 10.0]
    assert "fail" not in cloud.kinds()


def test_complete_with_a_stale_claim_is_dropped(cloud: FakeCloud, make_runner: Any) -> None:
    cloud.replies["complete"] = lambda r, b: envelope(409, "CONFLICT")
    assert make_runner().run(pulled()) is Outcome.CANCELLED
    assert cloud.kinds().count("complete") == 1


def test_fail_with_a_stale_claim_is_not_retried(cloud: FakeCloud, make_runner: Any) -> None:
    cloud.replies["fail"] = lambda r, b: envelope(409, "CONFLICT")
    engine = FakeEngine(error=EngineError("TIMEOUT", "slow"))
    assert make_runner(engine).run(pulled()) is Outcome.FAILED
    assert cloud.kinds().count("fail") == 1


def test_inputs_without_a_known_signature_keep_a_neutral_name(
    cloud: FakeCloud, make_runner: Any
) -> None:
    cloud.blobs["/inputs/image.png"] = b"GIF89a..."
    engine = FakeEngine()
    assert make_runner(engine).run(pulled()) is Outcome.COMPLETED
    assert engine.requests[0].image_path.name == "image"
    assert engine.requests[0].audio_path.name == "audio.wav"
    assert PNG  # the default image would have become image.png


def test_unusable_work_dir_is_reported_as_internal_error(
    cloud: FakeCloud, make_runner: Any, work_dir: Path
) -> None:
    work_dir.parent.mkdir(parents=True, exist_ok=True)
    work_dir.write_text("a file where the work dir should be")
    assert make_runner().run(pulled()) is Outcome.FAILED
    assert _fail_body(cloud)["code"] == "INTERNAL_ERROR"


# --- retries of transfers and reports -------------------------------------------------


def test_downloads_retry_transient_errors_from_scratch(
    cloud: FakeCloud, make_runner: Any, sleeps: list[float]
) -> None:
    cloud.script("get", httpx.ConnectError, 503, httpx.ReadTimeout)
    engine = FakeEngine()
    assert make_runner(engine).run(pulled()) is Outcome.COMPLETED
    gets = [call.url for call in cloud.calls if call.kind == "get"]
    assert gets == [gets[0]] * 4 + [gets[-1]]  # the image four times, then the audio
    assert sleeps == [1.0, 2.0, 4.0]
    assert len(engine.requests) == 1


def test_a_download_that_keeps_failing_is_a_retryable_storage_error(
    cloud: FakeCloud, make_runner: Any, sleeps: list[float]
) -> None:
    cloud.script("get", 502, 502, 502, 502)
    assert make_runner().run(pulled()) is Outcome.FAILED
    assert cloud.kinds().count("get") == 4
    body = _fail_body(cloud)
    assert (body["code"], body["retryable"]) == ("STORAGE_ERROR", True)
    assert "502" in body["message"]


def test_upload_restarts_the_whole_streaming_put_on_each_try(
    cloud: FakeCloud, make_runner: Any, sleeps: list[float]
) -> None:
    cloud.script("put", httpx.WriteError, 503, httpx.RemoteProtocolError)
    assert make_runner().run(pulled()) is Outcome.COMPLETED
    puts = [call for call in cloud.calls if call.kind == "put"]
    assert len(puts) == 4
    for put in puts:  # every try sent the whole file from its first byte
        assert put.body == VIDEO
        assert put.headers["content-length"] == str(len(VIDEO))
    assert cloud.uploads["/videos/out.mp4"] == VIDEO
    assert sleeps == [1.0, 2.0, 4.0]
    assert cloud.kinds()[-1] == "complete"


def test_an_upload_that_keeps_failing_is_a_retryable_storage_error(
    cloud: FakeCloud, make_runner: Any
) -> None:
    cloud.script("put", *[503] * 4)
    assert make_runner().run(pulled()) is Outcome.FAILED
    assert cloud.kinds().count("put") == 4
    assert "complete" not in cloud.kinds()
    (body,) = cloud.bodies("fail")
    assert (body["code"], body["retryable"]) == ("STORAGE_ERROR", True)


def test_ack_after_claim_is_retried(cloud: FakeCloud, make_runner: Any) -> None:
    cloud.script("ack", httpx.ConnectError, 429)
    assert make_runner().run(pulled()) is Outcome.COMPLETED
    assert cloud.kinds()[:4] == ["claim", "ack", "ack", "ack"]


def test_fail_is_retried_on_transient_errors(
    cloud: FakeCloud, make_runner: Any, sleeps: list[float]
) -> None:
    cloud.script("fail", httpx.ConnectError, 502)
    engine = FakeEngine(error=EngineError("TIMEOUT", "slow"))
    assert make_runner(engine).run(pulled()) is Outcome.FAILED
    assert cloud.kinds().count("fail") == 3
    assert sleeps == [1.0, 2.0]


@pytest.mark.parametrize("status", [400, 401, 413, 422])
def test_final_answers_to_reports_are_not_retried(
    cloud: FakeCloud, make_runner: Any, status: int
) -> None:
    cloud.script("complete", envelope(status, "INVALID_INPUT"))
    assert make_runner().run(pulled()) is Outcome.FAILED  # undelivered: the edge times it out
    assert cloud.kinds().count("complete") == 1
    assert "fail" not in cloud.kinds()


def test_a_409_after_a_retried_complete_drops_the_job(cloud: FakeCloud, make_runner: Any) -> None:
    cloud.script("complete", 503, envelope(409, "CONFLICT", "stale claim token"))
    assert make_runner().run(pulled()) is Outcome.CANCELLED
    assert cloud.kinds().count("complete") == 2
    assert "fail" not in cloud.kinds()


# --- heartbeats -----------------------------------------------------------------------


def test_failing_heartbeats_do_not_stop_the_engine(cloud: FakeCloud, make_runner: Any) -> None:
    cloud.heartbeat_interval = 0.01
    cloud.replies["progress"] = lambda r, b: envelope(503, "STORAGE_ERROR")
    engine = FakeEngine(steps=[(50.0, Stage.GENERATING, None)], silent_for=0.1)
    assert make_runner(engine).run(pulled()) is Outcome.COMPLETED
    assert cloud.kinds().count("progress") > 3  # kept trying meanwhile
    assert cloud.kinds()[-1] == "complete"


def test_an_edge_unreachable_for_too_long_stops_the_job_silently(
    cloud: FakeCloud, make_runner: Any, work_dir: Path
) -> None:
    def refuse(request: httpx.Request, body: Any) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    cloud.replies["progress"] = refuse
    engine = FakeEngine(
        steps=[(10.0, Stage.GENERATING, None)], wait_for_cancel=5.0, error=CancelledError()
    )
    runner = make_runner(engine, edge_lost_after_seconds=0.05)
    assert runner.run(pulled()) is Outcome.CANCELLED
    assert engine.saw_cancel
    assert not {"put", "complete", "fail"} & set(cloud.kinds())
    assert list(work_dir.iterdir()) == []


def test_cancel_request_stops_the_engine_within_5_seconds(
    cloud: FakeCloud, make_runner: Any
) -> None:
    asked_at: list[float] = []

    def progress(request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        cancel = body["stage"] == "generating"
        if cancel:
            asked_at.append(time.monotonic())
        return httpx.Response(200, json={"cancel_requested": cancel})

    cloud.replies["progress"] = progress
    engine = FakeEngine(steps=[(1.0, Stage.GENERATING, None)], wait_for_cancel=10.0)
    assert make_runner(engine).run(pulled()) is Outcome.CANCELLED
    assert engine.stopped_at is not None and engine.stopped_at - asked_at[0] < 5.0
    assert not {"put", "complete", "fail"} & set(cloud.kinds())


def test_progress_changes_reach_the_edge_at_least_every_second(
    cloud: FakeCloud, make_runner: Any
) -> None:
    """Every step of an engine that moves each (fake) second reaches the edge.

    So while the engine makes progress, a cancel is seen within about a second.
    """
    now = [1000.0]
    received = threading.Condition()
    cloud.on_call = lambda call: _notify(received) if call.kind == "progress" else None

    class Stepper(FakeEngine):
        def generate(
            self, request: Any, workdir: Path, on_progress: Callable[..., None], cancelled: Any
        ) -> Any:
            for step in range(1, 11):
                now[0] += 1.0
                on_progress(step * 10.0, Stage.GENERATING, None)
                with received:
                    assert received.wait_for(partial(_reported, cloud, 5.0 + 9.0 * step), 5)
            return super().generate(request, workdir, on_progress, cancelled)

    engine = Stepper(steps=[])
    assert make_runner(engine, clock=lambda: now[0]).run(pulled()) is Outcome.COMPLETED
    generating = [b["progress"] for b in cloud.bodies("progress") if b["stage"] == "generating"]
    assert generating[:10] == [5.0 + 9.0 * step for step in range(1, 11)]


def _reported(cloud: FakeCloud, progress: float) -> bool:
    return any(body["progress"] == progress for body in cloud.bodies("progress"))


def _notify(condition: threading.Condition) -> None:
    with condition:
        condition.notify_all()


# --- shutdown -------------------------------------------------------------------------


def _shutdown_fail_only(cloud: FakeCloud) -> None:
    assert cloud.bodies("fail") == [
        {
            "claim_token": "claim-tok",
            "code": "AGENT_SHUTDOWN",
            "message": SHUTDOWN_MESSAGE,
            "retryable": True,
        }
    ]
    assert "complete" not in cloud.kinds()


def _interrupt_on(cloud: FakeCloud, runner: Any, when: Callable[[Any], bool]) -> None:
    def on_call(call: Any) -> None:
        if when(call):
            runner.interrupt()

    cloud.on_call = on_call


def test_interrupt_while_the_engine_runs_hands_the_job_back(
    cloud: FakeCloud, make_runner: Any, work_dir: Path
) -> None:
    engine = FakeEngine(
        steps=[(10.0, Stage.GENERATING, None)], wait_for_cancel=5.0, error=CancelledError()
    )
    runner = make_runner(engine)
    _interrupt_on(cloud, runner, lambda c: c.kind == "progress" and c.body["stage"] == "generating")
    assert runner.run(pulled()) is Outcome.INTERRUPTED
    assert engine.saw_cancel
    _shutdown_fail_only(cloud)
    assert "put" not in cloud.kinds()
    assert list(work_dir.iterdir()) == []


def test_interrupt_is_reported_even_when_the_engine_fails_on_it(
    cloud: FakeCloud, make_runner: Any
) -> None:
    engine = FakeEngine(
        steps=[(10.0, Stage.GENERATING, None)],
        wait_for_cancel=5.0,
        error=EngineError("GENERATION_FAILED", "killed"),
    )
    runner = make_runner(engine)
    _interrupt_on(cloud, runner, lambda c: c.kind == "progress" and c.body["stage"] == "generating")
    assert runner.run(pulled()) is Outcome.INTERRUPTED
    _shutdown_fail_only(cloud)


def test_interrupt_during_a_download_skips_the_engine(cloud: FakeCloud, make_runner: Any) -> None:
    engine = FakeEngine()
    runner = make_runner(engine)
    _interrupt_on(cloud, runner, lambda c: c.kind == "get")
    assert runner.run(pulled()) is Outcome.INTERRUPTED
    assert engine.requests == []
    _shutdown_fail_only(cloud)


def test_interrupt_between_upload_tries_stops_the_upload(
    cloud: FakeCloud, make_runner: Any
) -> None:
    runner = make_runner()
    cloud.script("put", 503)
    _interrupt_on(cloud, runner, lambda c: c.kind == "put")
    assert runner.run(pulled()) is Outcome.INTERRUPTED
    assert cloud.kinds().count("put") == 1
    _shutdown_fail_only(cloud)


def test_interrupt_after_the_upload_still_completes(cloud: FakeCloud, make_runner: Any) -> None:
    runner = make_runner()
    _interrupt_on(cloud, runner, lambda c: c.kind == "put")  # the body is already sent
    assert runner.run(pulled()) is Outcome.COMPLETED
    assert cloud.kinds()[-1] == "complete" and "fail" not in cloud.kinds()


def test_interrupt_during_the_claim_hands_the_job_back_at_once(
    cloud: FakeCloud, make_runner: Any
) -> None:
    engine = FakeEngine()
    runner = make_runner(engine)
    _interrupt_on(cloud, runner, lambda c: c.kind == "claim")
    assert runner.run(pulled()) is Outcome.INTERRUPTED
    assert cloud.kinds() == ["claim", "ack", "fail"]
    assert engine.requests == []
    _shutdown_fail_only(cloud)


def test_an_interrupted_runner_hands_messages_back_unclaimed(
    cloud: FakeCloud, make_runner: Any
) -> None:
    runner = make_runner()
    runner.interrupt()  # no job in progress: nothing to stop now
    assert runner.run(pulled()) is Outcome.REQUEUED
    assert cloud.kinds() == ["ack"]
    assert cloud.bodies("ack") == [
        {"acks": [], "retries": [{"lease_id": "lease-1", "delay_seconds": 0}]}
    ]


def test_a_client_cancel_wins_over_a_later_shutdown(cloud: FakeCloud, make_runner: Any) -> None:
    cloud.replies["progress"] = lambda r, b: httpx.Response(
        200, json={"cancel_requested": b["stage"] == "generating"}
    )
    engine = FakeEngine(
        steps=[(1.0, Stage.GENERATING, None)], wait_for_cancel=5.0, error=CancelledError()
    )
    runner = make_runner(engine)
    cloud.on_call = lambda c: runner.interrupt() if c.kind == "progress" else None
    # The first report (downloading) interrupts; the cancel reply comes later but the
    # job is already stopped for the shutdown: it is handed back, not silently dropped.
    assert runner.run(pulled()) is Outcome.INTERRUPTED
    _shutdown_fail_only(cloud)


def test_interrupt_while_probing_the_inputs_skips_the_engine(
    cloud: FakeCloud, make_runner: Any, fake_probes: FakeProbes
) -> None:
    engine = FakeEngine()
    runners: list[Any] = []
    fake_probes._audio = lambda path: runners[0].interrupt()  # type: ignore[method-assign]
    runners.append(make_runner(engine))
    assert runners[0].run(pulled()) is Outcome.INTERRUPTED
    assert engine.requests == []
    _shutdown_fail_only(cloud)
