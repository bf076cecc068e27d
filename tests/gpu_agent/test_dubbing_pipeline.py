"""The pipeline's dubbing and two-speaker paths over the fakes: which files it downloads,
what it probes, the assignment it reports, and what the engine is handed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from contracts import BoxSource, FailureCode, SpeakerAssignment, SpeakerMode
from gpu_agent.outcome import Outcome
from infinitetalk.engine import InvalidInputError, SpeakerTracks

from .conftest import WAV, FakeCloud, FakeEngine, FakeProbes, fail_body, pulled

MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(200)
HALVES = SpeakerAssignment(boxes=((0, 0, 32, 48), (32, 0, 64, 48)), source=BoxSource.HALVES)


class Media:
    """What the real probes would do for a video and two tracks, recorded."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []
        self.video_error: Exception | None = None

    def probe_video_input(self, video: Path, first: Path, pixels: int, seconds: float) -> None:
        self.seen.append(("video", video.suffix))
        if self.video_error is not None:
            raise self.video_error

    def find_speakers(self, image: Path) -> SpeakerAssignment:
        self.seen.append(("faces", image.name))
        return HALVES

    def prepare_speakers(
        self,
        first: Path,
        second: Path,
        mode: SpeakerMode,
        assignment: SpeakerAssignment,
        directory: Path,
        seconds: float,
    ) -> tuple[Path, Any, SpeakerTracks]:
        self.seen.append(("speakers", (first.name, second.name, mode, assignment.source)))
        tracks = SpeakerTracks(mode, assignment, (first, second), (first, second))
        return directory / "mixed.wav", "mixed pass", tracks


@pytest.fixture
def media(fake_probes: FakeProbes, monkeypatch: pytest.MonkeyPatch) -> Media:
    fakes = Media()
    base = fake_probes.probes
    monkeypatch.setattr(
        fake_probes,
        "probes",
        lambda: replace(
            base(),
            probe_video_input=fakes.probe_video_input,
            find_speakers=fakes.find_speakers,
            prepare_speakers=fakes.prepare_speakers,
        ),
    )
    return fakes


def claim_with(cloud: FakeCloud, inputs: dict[str, Any], settings: dict[str, Any]) -> None:
    body = cloud.claim_body()
    body["inputs"].update(inputs)
    body["settings"].update(settings)
    cloud.replies["claim"] = lambda request, sent: httpx.Response(200, json=body)


def test_a_video_is_downloaded_probed_and_handed_to_the_engine(
    cloud: FakeCloud, make_delivery: Any, media: Media
) -> None:
    cloud.blobs["/inputs/video.mp4"] = MP4
    claim_with(cloud, {"image_url": None, "video_url": "http://blobs.test/inputs/video.mp4"}, {})
    engine = FakeEngine()
    assert make_delivery(engine).handle(pulled()) is Outcome.COMPLETED
    assert media.seen == [("video", ".mp4")]  # sniffed: named by its content
    (request,) = engine.requests
    assert request.video_path is not None and request.video_path.name == "video.mp4"
    assert request.image_path.name == "first_frame.png" and request.speakers is None


def test_an_undecodable_video_fails_the_job_with_its_code(
    cloud: FakeCloud, make_delivery: Any, media: Media
) -> None:
    cloud.blobs["/inputs/video.mp4"] = MP4
    claim_with(cloud, {"image_url": None, "video_url": "http://blobs.test/inputs/video.mp4"}, {})
    media.video_error = InvalidInputError("no frame decodes", FailureCode.VIDEO_UNDECODABLE)
    engine = FakeEngine()
    assert make_delivery(engine).handle(pulled()) is Outcome.FAILED
    assert (fail_body(cloud)["code"], fail_body(cloud)["retryable"]) == ("VIDEO_UNDECODABLE", False)
    assert engine.requests == []


def test_a_claim_without_a_picture_fails_as_invalid(
    cloud: FakeCloud, make_delivery: Any, media: Media
) -> None:
    claim_with(cloud, {"image_url": None}, {})
    assert make_delivery(FakeEngine()).handle(pulled()) is Outcome.FAILED
    assert fail_body(cloud)["code"] == "INVALID_INPUT"


@pytest.mark.parametrize("given", [None, [[0, 0, 30, 48], [34, 0, 64, 48]]])
def test_two_speakers_are_assigned_reported_and_mixed(
    cloud: FakeCloud, make_delivery: Any, media: Media, given: Any
) -> None:
    cloud.blobs["/blobs/audio2.wav"] = WAV
    settings = {"speaker_mode": "simultaneous", "speaker_boxes": given}
    claim_with(cloud, {"audio2_url": "/blobs/audio2.wav?sig=two"}, settings)
    engine = FakeEngine()
    assert make_delivery(engine).handle(pulled()) is Outcome.COMPLETED
    source = BoxSource.HALVES if given is None else BoxSource.GIVEN
    speakers = [("speakers", ("audio.wav", "audio2.wav", SpeakerMode.SIMULTANEOUS, source))]
    assert media.seen == ([("faces", "image.png")] if given is None else []) + speakers
    (completed,) = cloud.bodies("complete")
    used = completed["result"]["speakers"]
    assert used["source"] == source.value
    # Reports after the choice carry it (how many go out before the end is up to timing).
    reported = [body["speakers"] for body in cloud.bodies("progress")]
    chosen = next((index for index, report in enumerate(reported) if report), len(reported))
    assert chosen > 0 and all(report == used for report in reported[chosen:])
    (request,) = engine.requests
    assert request.audio == "mixed pass" and request.audio_path.name == "mixed.wav"
    assert request.speakers is not None and request.speakers.assignment.source is source
