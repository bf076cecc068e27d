"""The pipeline (download, probe, engine, verify, upload), driven through one delivered message."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from contracts import FailureCode, Quality, Stage
from contracts.media import MAX_AUDIO_SECONDS, MAX_IMAGE_PIXELS
from gpu_agent.outcome import Outcome
from infinitetalk.engine import EngineError, InvalidInputError

from .conftest import (
    PNG,
    VIDEO,
    WAV,
    FakeCloud,
    FakeEngine,
    FakeProbes,
    fail_body,
    pulled,
    r2_etag,
)


def test_progress_sent_to_the_edge_is_monotonic_and_follows_stages(
    cloud: FakeCloud, make_delivery: Any
) -> None:
    # The engine goes back (40 after 60): the agent must never report a lower value.
    steps: list[tuple[float, Stage, float | None]] = [
        (10.0, Stage.GENERATING, 9.0),
        (60.0, Stage.GENERATING, 4.0),
        (40.0, Stage.ENCODING, 2.0),
        (100.0, Stage.ENCODING, 0.0),
    ]
    assert make_delivery(FakeEngine(steps)).handle(pulled()) is Outcome.COMPLETED
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


def test_undecodable_input_fails_the_job_not_retryable(
    cloud: FakeCloud, make_delivery: Any, fake_probes: FakeProbes, work_dir: Path
) -> None:
    fake_probes.audio_error = InvalidInputError("audio could not be decoded")
    engine = FakeEngine()
    assert make_delivery(engine).handle(pulled()) is Outcome.FAILED
    assert fail_body(cloud) == {
        "claim_token": "claim-tok",
        "code": "INVALID_INPUT",
        "message": "audio could not be decoded",
        "retryable": False,
    }
    assert engine.requests == []
    assert list(work_dir.iterdir()) == []


@pytest.mark.parametrize("code", [FailureCode.AUDIO_TOO_LONG, FailureCode.IMAGE_TOO_LARGE])
def test_an_input_over_a_limit_fails_with_that_limit_s_code(
    cloud: FakeCloud, make_delivery: Any, fake_probes: FakeProbes, code: FailureCode
) -> None:
    error = InvalidInputError("over the limit", code)
    if code is FailureCode.AUDIO_TOO_LONG:
        fake_probes.audio_error = error
    else:
        fake_probes.image_error = error
    assert make_delivery(FakeEngine()).handle(pulled()) is Outcome.FAILED
    body = fail_body(cloud)
    assert (body["code"], body["retryable"]) == (code.value, False)
    assert fake_probes.limits[0] == MAX_IMAGE_PIXELS
    assert fake_probes.limits[1:] == (
        [MAX_AUDIO_SECONDS] if code is FailureCode.AUDIO_TOO_LONG else []
    )


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
    cloud: FakeCloud, make_delivery: Any, error: EngineError, code: str, retryable: bool
) -> None:
    assert make_delivery(FakeEngine(error=error)).handle(pulled()) is Outcome.FAILED
    body = fail_body(cloud)
    assert (body["code"], body["retryable"], body["message"]) == (code, retryable, error.message)


def test_a_quality_the_engine_cannot_make_fails_before_any_download(
    cloud: FakeCloud, make_delivery: Any, work_dir: Path
) -> None:
    cloud.quality = "fast"
    why = "this agent has no distilled LoRA (INFINITETALK_FAST_LORA is blank)"
    engine = FakeEngine(unavailable={Quality.FAST: why})
    assert make_delivery(engine).handle(pulled()) is Outcome.FAILED
    assert fail_body(cloud) == {
        "claim_token": "claim-tok",
        "code": "QUALITY_UNAVAILABLE",
        "message": f"quality=fast is not available: {why}; submit with quality=standard",
        "retryable": False,
    }
    assert "get" not in cloud.kinds() and engine.requests == []
    assert list(work_dir.iterdir()) == []


def test_the_jobs_quality_reaches_the_engine(cloud: FakeCloud, make_delivery: Any) -> None:
    cloud.quality = "fast"
    engine = FakeEngine(unavailable={Quality.STANDARD: "never asked"})
    assert make_delivery(engine).handle(pulled()) is Outcome.COMPLETED
    assert engine.requests[0].quality is Quality.FAST


def test_the_complete_request_reports_the_engine_s_wall_time_as_gpu_seconds(
    cloud: FakeCloud, make_delivery: Any
) -> None:
    assert make_delivery(FakeEngine(silent_for=0.2)).handle(pulled()) is Outcome.COMPLETED
    (body,) = cloud.bodies("complete")
    assert 0.2 <= body["result"]["gpu_seconds"] < 5.0


def test_download_over_the_cap_fails_the_job_as_invalid_input(
    cloud: FakeCloud, make_delivery: Any
) -> None:
    cloud.blobs["/blobs/audio.wav"] = WAV + b"\x00" * 1000
    engine = FakeEngine()
    assert make_delivery(engine, max_audio_bytes=500).handle(pulled()) is Outcome.FAILED
    body = fail_body(cloud)
    assert (body["code"], body["retryable"]) == ("INVALID_INPUT", False)
    assert "audio" in body["message"]
    assert engine.requests == []


def test_download_http_error_is_a_retryable_storage_error(
    cloud: FakeCloud, make_delivery: Any
) -> None:
    del cloud.blobs["/inputs/image.png"]
    assert make_delivery().handle(pulled()) is Outcome.FAILED
    body = fail_body(cloud)
    assert (body["code"], body["retryable"]) == ("STORAGE_ERROR", True)
    assert "sig" not in body["message"] and "404" in body["message"]
    assert cloud.kinds().count("get") == 1  # a 404 is final: not retried


def test_upload_error_is_a_retryable_storage_error(cloud: FakeCloud, make_delivery: Any) -> None:
    cloud.replies["put"] = lambda r, b: httpx.Response(403)
    assert make_delivery().handle(pulled()) is Outcome.FAILED
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
    cloud: FakeCloud, make_delivery: Any, fake_probes: FakeProbes, video: dict[str, Any]
) -> None:
    fake_probes.video = SimpleNamespace(**video)
    assert make_delivery().handle(pulled()) is Outcome.FAILED
    body = fail_body(cloud)
    assert (body["code"], body["retryable"]) == ("GENERATION_FAILED", True)


def test_undecodable_output_is_not_uploaded(
    cloud: FakeCloud, make_delivery: Any, fake_probes: FakeProbes
) -> None:
    fake_probes.video_error = InvalidInputError("moov atom not found")
    assert make_delivery().handle(pulled()) is Outcome.FAILED
    assert fail_body(cloud)["code"] == "GENERATION_FAILED"


def test_empty_output_is_not_uploaded(cloud: FakeCloud, make_delivery: Any) -> None:
    assert make_delivery(FakeEngine(output=b"")).handle(pulled()) is Outcome.FAILED
    assert fail_body(cloud)["code"] == "GENERATION_FAILED"


@pytest.mark.parametrize(
    ("image", "audio", "names"),
    [
        (PNG, WAV, ("image.png", "audio.wav")),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", b"ID3\x04\x00\x00\x00", ("image.jpg", "audio.mp3")),
        (PNG, b"\xff\xfb\x90\x64" + b"\x00" * 60, ("image.png", "audio.mp3")),  # no ID3 tag
        (b"GIF89a...", b"RIFF\x00\x00\x00\x00AVI LIST", ("image", "audio")),
        (PNG, b"XXXX\x00\x00\x00\x00WAVE", ("image.png", "audio")),
    ],
    ids=["png-wav", "jpeg-id3", "mp3-frame", "unknown", "wave-without-riff"],
)
def test_inputs_are_named_by_their_bytes(
    cloud: FakeCloud, make_delivery: Any, image: bytes, audio: bytes, names: tuple[str, str]
) -> None:
    """Decoders (and upstream InfiniteTalk) look at the name; unknown bytes keep a neutral one."""
    cloud.blobs.update({"/inputs/image.png": image, "/blobs/audio.wav": audio})
    engine = FakeEngine()
    assert make_delivery(engine).handle(pulled()) is Outcome.COMPLETED
    request = engine.requests[0]
    assert (request.image_path.name, request.audio_path.name) == names


def test_the_engine_gets_the_audio_as_its_one_pass_prepared_it(
    make_delivery: Any, fake_probes: FakeProbes
) -> None:
    """The audio is decoded once, by its probe: the engine receives that pass, not a path to
    decode again, and the pass writes beside the job's downloads."""
    engine = FakeEngine()
    assert make_delivery(engine).handle(pulled()) is Outcome.COMPLETED
    request = engine.requests[0]
    assert request.audio is fake_probes.prepared
    assert [kind for kind, _ in fake_probes.seen] == ["image", "audio", "video"]
    assert fake_probes.prepared_in == [request.audio_path.parent / "prepared"]


# --- retries of transfers ---------------------------------------------------------


def test_downloads_retry_transient_errors_from_scratch(
    cloud: FakeCloud, make_delivery: Any, sleeps: list[float]
) -> None:
    cloud.script("get", httpx.ConnectError, 503, httpx.ReadTimeout)
    engine = FakeEngine()
    assert make_delivery(engine).handle(pulled()) is Outcome.COMPLETED
    gets = [call.url for call in cloud.calls if call.kind == "get"]
    assert gets == [gets[0]] * 4 + [gets[-1]]  # the image four times, then the audio
    assert sleeps == [1.0, 2.0, 4.0]
    assert len(engine.requests) == 1


def test_a_download_that_keeps_failing_is_a_retryable_storage_error(
    cloud: FakeCloud, make_delivery: Any, sleeps: list[float]
) -> None:
    cloud.script("get", 502, 502, 502, 502)
    assert make_delivery().handle(pulled()) is Outcome.FAILED
    assert cloud.kinds().count("get") == 4
    body = fail_body(cloud)
    assert (body["code"], body["retryable"]) == ("STORAGE_ERROR", True)
    assert "502" in body["message"]


def test_upload_restarts_the_whole_streaming_put_on_each_try(
    cloud: FakeCloud, make_delivery: Any, sleeps: list[float]
) -> None:
    cloud.script("put", httpx.WriteError, 503, httpx.RemoteProtocolError)
    assert make_delivery().handle(pulled()) is Outcome.COMPLETED
    puts = [call for call in cloud.calls if call.kind == "put"]
    assert len(puts) == 4
    for put in puts:  # every try sent the whole file from its first byte
        assert put.body == VIDEO
        assert put.headers["content-length"] == str(len(VIDEO))
    assert cloud.uploads["/videos/out.mp4"] == VIDEO
    assert sleeps == [1.0, 2.0, 4.0]
    assert cloud.kinds()[-1] == "complete"


def test_an_upload_that_keeps_failing_is_a_retryable_storage_error(
    cloud: FakeCloud, make_delivery: Any
) -> None:
    cloud.script("put", *[503] * 4)
    assert make_delivery().handle(pulled()) is Outcome.FAILED
    assert cloud.kinds().count("put") == 4
    assert "complete" not in cloud.kinds()
    (body,) = cloud.bodies("fail")
    assert (body["code"], body["retryable"]) == ("STORAGE_ERROR", True)


def claim_with_etags(cloud: FakeCloud, image: str, audio: str) -> None:
    body = cloud.claim_body()
    body["inputs"].update(image_etag=image, audio_etag=audio)
    cloud.replies["claim"] = lambda request, _: httpx.Response(200, json=body)


def test_inputs_with_the_etags_recorded_at_generate_are_processed(
    cloud: FakeCloud, make_delivery: Any
) -> None:
    claim_with_etags(
        cloud, r2_etag(cloud.blobs["/inputs/image.png"]), r2_etag(cloud.blobs["/blobs/audio.wav"])
    )
    assert make_delivery().handle(pulled()) is Outcome.COMPLETED


def test_an_input_replaced_after_generate_fails_the_job_as_input_changed(
    cloud: FakeCloud, make_delivery: Any, work_dir: Path
) -> None:
    checked = cloud.blobs["/blobs/audio.wav"]
    claim_with_etags(cloud, r2_etag(cloud.blobs["/inputs/image.png"]), r2_etag(checked))
    cloud.blobs["/blobs/audio.wav"] = checked[:-2] + b"\x01\x02"  # swapped since /generate
    engine = FakeEngine()
    assert make_delivery(engine).handle(pulled()) is Outcome.FAILED
    assert fail_body(cloud) == {
        "claim_token": "claim-tok",
        "code": "INPUT_CHANGED",
        "message": "the uploaded audio was replaced after the job was created",
        "retryable": False,
    }
    assert cloud.kinds().count("get") == 2  # refused at once, not retried
    assert engine.requests == [] and list(work_dir.iterdir()) == []
