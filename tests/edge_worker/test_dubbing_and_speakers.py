"""Dubbing (`video`) and two speakers (`audio2`) at the edge: the rules as plain functions,
then each refusal over HTTP, the uploads path, and the agent protocol (capabilities,
the assignment the agent reports)."""

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from litestar.testing import TestClient

from contracts import Capability, FailureCode, InputKind, JobStatus, Resolution, SpeakerMode
from contracts.media import MOV, MP4, WEBM, sniff, video_header
from edge_worker.domain import jobs, speakers
from edge_worker.domain.problems import Problem
from edge_worker.local import LocalRuntime
from tests.conftest import mp4_bytes, png_bytes, wav_bytes
from tests.edge_worker.conftest import AGENT_AUTH, AUTH, PULL_URL, QUEUE_AUTH, invalid_fields

WIDE = (320, 160)  # a picture with room for two people side by side
LEFT, RIGHT = [10, 10, 150, 150], [170, 10, 310, 150]


# --- the rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(("container", "expected"), [("mp4", MP4), ("mov", MOV), ("webm", WEBM)])
def test_videos_are_sniffed_by_their_first_bytes(container: str, expected: object) -> None:
    assert sniff(mp4_bytes(0.2, container=container)[:64]) is expected


@pytest.mark.parametrize(
    "head",
    [
        b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00",  # AAC audio in an MP4 box
        b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00",  # a HEIF still
        b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x88matroska",  # Matroska, not WebM
        b"\x00\x00\x00\x08free",
    ],
)
def test_other_iso_and_ebml_files_are_not_videos(head: bytes) -> None:
    assert sniff(head) is None


def test_an_mp4_header_tells_its_length_and_size_only_with_moov_first() -> None:
    assert video_header(mp4_bytes(2.0, size=(96, 120))).seconds == pytest.approx(2.0)
    assert video_header(mp4_bytes(2.0, size=(96, 120))).size == (96, 120)
    late = mp4_bytes(2.0, faststart=False)
    assert video_header(late[:2048]).seconds is None  # moov sits after the media
    assert video_header(mp4_bytes(0.2, container="webm")).seconds is None


@pytest.mark.parametrize(
    ("first", "second", "share"),
    [
        ((0, 0, 10, 10), (10, 0, 20, 10), 0.0),  # touching edges share nothing
        ((0, 0, 10, 10), (5, 0, 15, 10), 0.5),
        ((0, 0, 100, 100), (10, 10, 20, 20), 1.0),  # inside: IoU would say 0.01
        ((0, 0, 10, 10), (20, 20, 30, 30), 0.0),
    ],
)
def test_overlap_is_over_the_smaller_box(
    first: tuple[int, int, int, int], second: tuple[int, int, int, int], share: float
) -> None:
    assert speakers.overlap(first, second) == pytest.approx(share)


@pytest.mark.parametrize(
    "text",
    [
        "[[0, 0, 10, 10]]",
        "[[0, 0, 10, 10], [0, 0, 10]]",
        '[[0, 0, 10, 10], [0, 0, 10, "9"]]',
        "[[0, 0, 10, 10], [0, 0, 10, 9.5]]",
        "[[0, 0, 10, 10], [-1, 0, 10, 9]]",
        "[[10, 0, 0, 10], [0, 0, 10, 10]]",
        "[[0, 0, 10, 10], [0, 0, 10, true]]",
        '"[[0,0,1,1],[0,0,1,1]]"',
        "not json",
    ],
)
def test_malformed_boxes_are_invalid_input(text: str) -> None:
    with pytest.raises(Problem) as refused:
        speakers.parse_boxes_text(text)
    assert refused.value.details["errors"][0]["field"] == "speaker_boxes"


@pytest.mark.parametrize(
    ("kind", "size", "boxes", "code", "reason"),
    [
        (InputKind.VIDEO, (320, 160), None, "TWO_SPEAKERS_UNSUPPORTED", "video_input"),
        (InputKind.IMAGE, (160, 320), None, "TWO_SPEAKERS_UNSUPPORTED", "portrait_without_boxes"),
        (
            InputKind.IMAGE,
            WIDE,
            ((0, 0, 10, 10), (0, 0, 330, 10)),
            "SPEAKER_BOXES_INVALID",
            "outside",
        ),
        (
            InputKind.IMAGE,
            WIDE,
            ((0, 0, 100, 100), (40, 0, 140, 100)),
            "SPEAKER_BOXES_INVALID",
            "overlap",
        ),
    ],
)
def test_two_speaker_refusals(
    kind: InputKind, size: tuple[int, int], boxes: Any, code: str, reason: str
) -> None:
    with pytest.raises(Problem) as refused:
        speakers.check_two_speakers(kind, size, boxes)
    assert (refused.value.code.value, refused.value.details["reason"]) == (code, reason)


@pytest.mark.parametrize(
    ("size", "boxes"),
    [
        (WIDE, None),  # the agent looks for two faces, or takes the halves
        ((160, 320), ((0, 0, 160, 150), (0, 160, 160, 320))),  # stacked: the boxes say where
        (WIDE, ((0, 0, 100, 100), (50, 0, 150, 100))),  # exactly half of the smaller: allowed
    ],
)
def test_two_speaker_pictures_accepted(size: tuple[int, int], boxes: Any) -> None:
    speakers.check_two_speakers(InputKind.IMAGE, size, boxes)


def test_speaker_fields_need_audio2_and_default_to_sequential() -> None:
    assert speakers.check_speaker_fields(True, None, None) is SpeakerMode.SEQUENTIAL
    assert speakers.check_speaker_fields(False, None, None) is None
    for mode, boxes in ((SpeakerMode.SIMULTANEOUS, None), (None, ((0, 0, 1, 1), (1, 1, 2, 2)))):
        with pytest.raises(Problem):
            speakers.check_speaker_fields(False, mode, boxes)


# --- over HTTP -----------------------------------------------------------------------------


def post_form(client: TestClient, files: dict[str, bytes], **data: str) -> Any:
    body = {"prompt": "Two people talking", "resolution": "480p", **data}
    parts = {name: (name, content) for name, content in files.items()}
    return client.post("/generate", headers=AUTH, files=parts, data=body)


def error_of(response: Any) -> tuple[int, str, dict[str, Any]]:
    error = response.json()["error"]
    return response.status_code, error["code"], error["details"]


def test_a_dubbing_job_is_created_from_a_video(client: TestClient) -> None:
    response = post_form(client, {"video": mp4_bytes(1.0), "audio": wav_bytes()})
    assert response.status_code == 200, response.text
    job = response.json()
    assert (job["input_kind"], job["speaker_mode"], job["speakers"]) == ("video", None, None)


def test_a_two_speaker_job_keeps_its_mode(client: TestClient) -> None:
    files = {"image": png_bytes(WIDE), "audio": wav_bytes(), "audio2": wav_bytes()}
    response = post_form(client, files, speaker_mode="simultaneous")
    assert response.status_code == 200, response.text
    assert (response.json()["input_kind"], response.json()["speaker_mode"]) == (
        "image",
        "simultaneous",
    )


@pytest.mark.parametrize(("mode", "seconds"), [("sequential", 3.0), ("simultaneous", 2.0)])
def test_two_speakers_meter_the_video_they_make(
    client: TestClient, runtime: LocalRuntime, mode: str, seconds: float
) -> None:
    """One after the other the video lasts both tracks; at once, the longer one."""
    files = {"image": png_bytes(WIDE), "audio": wav_bytes(2.0), "audio2": wav_bytes(1.0)}
    response = post_form(client, files, speaker_mode=mode)
    assert response.status_code == 200, response.text
    job = asyncio.run(runtime.store.get(response.json()["job_id"]))
    assert job is not None and job.audio_seconds == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("files", "data", "expected"),
    [
        ({"video": png_bytes(), "audio": wav_bytes()}, {}, (400, "UNSUPPORTED_MEDIA")),
        (
            {"image": png_bytes(), "audio": wav_bytes(), "audio2": png_bytes()},
            {},
            (400, "UNSUPPORTED_MEDIA"),
        ),
        (
            {"video": mp4_bytes(0.2), "audio": wav_bytes(), "audio2": wav_bytes()},
            {},
            (400, "TWO_SPEAKERS_UNSUPPORTED"),
        ),
        (
            {"image": png_bytes((96, 120)), "audio": wav_bytes(), "audio2": wav_bytes()},
            {},
            (400, "TWO_SPEAKERS_UNSUPPORTED"),
        ),
        (
            {"image": png_bytes(WIDE), "audio": wav_bytes(), "audio2": wav_bytes()},
            {"speaker_boxes": json.dumps([LEFT, [170, 10, 330, 150]])},
            (400, "SPEAKER_BOXES_INVALID"),
        ),
        (
            {"image": png_bytes(WIDE), "audio": wav_bytes(), "audio2": wav_bytes()},
            {"speaker_boxes": json.dumps([LEFT, [20, 20, 140, 140]])},
            (400, "SPEAKER_BOXES_INVALID"),
        ),
    ],
)
def test_each_refusal_has_its_code(
    client: TestClient, files: dict[str, bytes], data: dict[str, str], expected: tuple[int, str]
) -> None:
    status, code, details = error_of(post_form(client, files, **data))
    assert (status, code) == expected
    if code == "UNSUPPORTED_MEDIA":
        assert details["field"] in ("video", "audio2")


def test_a_video_longer_than_the_limit_is_refused_by_its_header(client: TestClient) -> None:
    limit = client.get("/health").json()["limits"]["max_video_seconds"]
    long_video = mp4_bytes(0.4, fps=1)  # one frame...
    patched = long_video.replace(  # ...that its mvhd says lasts past the limit
        *_mvhd_duration(long_video, int(limit) + 5)
    )
    status, code, details = error_of(post_form(client, {"video": patched, "audio": wav_bytes()}))
    assert (status, code, details["limit_seconds"]) == (413, "VIDEO_TOO_LONG", limit)


def _mvhd_duration(video: bytes, seconds: int) -> tuple[bytes, bytes]:
    """(the mvhd box's timescale+duration bytes, the same claiming `seconds`)."""
    start = video.index(b"mvhd") + 4 + 4 + 8  # version/flags, creation and modification times
    timescale = int.from_bytes(video[start : start + 4], "big")
    old = video[start : start + 8]
    return old, old[:4] + (seconds * timescale).to_bytes(4, "big")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"speaker_mode": "simultaneous"}, "speaker_mode"),
        ({"speaker_boxes": json.dumps([LEFT, RIGHT])}, "speaker_boxes"),
    ],
)
def test_speaker_fields_without_audio2_are_invalid(
    client: TestClient, data: dict[str, str], field: str
) -> None:
    assert invalid_fields(
        post_form(client, {"image": png_bytes(), "audio": wav_bytes()}, **data)
    ) == [field]


def test_image_and_video_together_are_invalid(client: TestClient) -> None:
    files = {"image": png_bytes(), "video": mp4_bytes(0.2), "audio": wav_bytes()}
    assert invalid_fields(post_form(client, files)) == ["video"]


@pytest.mark.parametrize(
    "files",
    [
        {"video": mp4_bytes(0.2), "audio": wav_bytes()},
        {"image": png_bytes(WIDE), "audio": wav_bytes(), "audio2": wav_bytes()},
    ],
    ids=["video", "audio2"],
)
@pytest.mark.parametrize("parallel", ["auto", "4"])
def test_a_dubbing_or_two_speaker_job_is_not_split(
    client: TestClient, files: dict[str, bytes], parallel: str
) -> None:
    assert invalid_fields(post_form(client, files, parallel=parallel)) == ["parallel"]
    assert post_form(client, files, parallel="off").status_code == 200


def test_uploads_carry_a_video_and_a_second_track(client: TestClient) -> None:
    video, track = mp4_bytes(0.4), wav_bytes()
    image = png_bytes(WIDE)
    declared = {
        "video": {"content_type": "video/mp4", "size_bytes": len(video)},
        "audio": {"content_type": "audio/wav", "size_bytes": len(track)},
    }
    grants = client.post("/uploads", headers=AUTH, json=declared).json()
    for name, content in (("video", video), ("audio", track)):
        put = client.put(grants[name]["url"], headers=grants[name]["headers"], content=content)
        assert put.status_code in (200, 201), put.text
    body = {
        "video_upload_id": grants["video"]["upload_id"],
        "audio_upload_id": grants["audio"]["upload_id"],
        "prompt": "Dub me",
    }
    created = client.post("/generate", headers=AUTH, json=body)
    assert created.status_code == 200, created.text
    assert created.json()["input_kind"] == "video"

    second = {
        "image": {"content_type": "image/png", "size_bytes": len(image)},
        "audio": {"content_type": "audio/wav", "size_bytes": len(track)},
        "audio2": {"content_type": "audio/wav", "size_bytes": len(track)},
    }
    grants = client.post("/uploads", headers=AUTH, json=second).json()
    for name, content in (("image", image), ("audio", track), ("audio2", track)):
        client.put(grants[name]["url"], headers=grants[name]["headers"], content=content)
    ids = {f"{name}_upload_id": grants[name]["upload_id"] for name in second}
    outside = client.post(
        "/generate",
        headers=AUTH,
        json={**ids, "prompt": "Talk", "speaker_boxes": [LEFT, [170, 10, 330, 150]]},
    )
    assert error_of(outside)[1] == "SPEAKER_BOXES_INVALID"  # the upload's size is read too
    both = client.post(
        "/generate",
        headers=AUTH,
        json={**ids, "video_upload_id": ids["image_upload_id"], "prompt": "x"},
    )
    assert invalid_fields(both) == ["image_upload_id"]
    split = client.post(
        "/generate",
        headers=AUTH,
        json={**ids, "prompt": "Talk", "parallel": 2},
    )
    assert invalid_fields(split) == ["parallel"]  # the JSON body says the same


# --- the agent protocol --------------------------------------------------------------------


def pull_one(client: TestClient) -> None:
    pulled = client.post(PULL_URL, headers=QUEUE_AUTH, json={"batch_size": 10})
    assert pulled.status_code == 200


def claim(client: TestClient, job_id: str, capabilities: list[str] | None) -> Any:
    body: dict[str, Any] = {"agent_id": "agent-1"}
    if capabilities is not None:
        body["capabilities"] = capabilities
    return client.post(f"/agent/jobs/{job_id}/claim", headers=AGENT_AUTH, json=body)


def test_agents_lacking_a_capability_are_refused_until_the_job_fails(
    client: TestClient, runtime: Any
) -> None:
    files = {"image": png_bytes(WIDE), "audio": wav_bytes(), "audio2": wav_bytes()}
    job = post_form(client, files, speaker_boxes=json.dumps([LEFT, RIGHT])).json()
    pull_one(client)
    old_agent = claim(client, job["job_id"], None)  # sends no capabilities: image only
    status, code, details = error_of(old_agent)
    assert (status, code) == (422, "MISSING_CAPABILITY")
    assert details == {"required": ["image", "two_speakers"], "missing": ["two_speakers"]}
    limit = runtime.use_cases.context.settings.max_capability_refusals
    for _ in range(limit - 2):
        assert claim(client, job["job_id"], ["image", "video"]).status_code == 422
    last = claim(client, job["job_id"], ["image"])
    assert (last.status_code, last.json()["error"]["code"]) == (409, "CONFLICT")
    status_now = client.get(f"/status/{job['job_id']}", headers=AUTH).json()
    assert (status_now["status"], status_now["error"]["code"]) == ("failed", "NO_CAPABLE_AGENT")


def test_a_capable_agent_gets_the_inputs_and_reports_the_assignment(client: TestClient) -> None:
    files = {"image": png_bytes(WIDE), "audio": wav_bytes(), "audio2": wav_bytes(0.3)}
    job = post_form(client, files, speaker_mode="simultaneous").json()
    pull_one(client)
    capable = [c.value for c in Capability]
    claimed = claim(client, job["job_id"], capable)
    assert claimed.status_code == 200, claimed.text
    body = claimed.json()
    assert body["inputs"]["audio2_url"] and body["inputs"]["image_url"]
    assert body["inputs"]["video_url"] is None
    assert body["settings"]["speaker_mode"] == "simultaneous"
    assert body["settings"]["speaker_boxes"] is None  # the agent finds the faces
    assert client.get(body["inputs"]["audio2_url"]).content == wav_bytes(0.3)
    assignment = {"boxes": [[0, 0, 160, 160], [160, 0, 320, 160]], "source": "halves"}
    progress = {
        "claim_token": body["claim_token"],
        "progress": 10,
        "stage": "generating",
        "speakers": assignment,
    }
    reply = client.post(f"/agent/jobs/{job['job_id']}/progress", headers=AGENT_AUTH, json=progress)
    assert reply.status_code == 200, reply.text
    later = {**progress, "progress": 20}
    del later["speakers"]  # a later heartbeat without it keeps it
    client.post(f"/agent/jobs/{job['job_id']}/progress", headers=AGENT_AUTH, json=later)
    shown = client.get(f"/status/{job['job_id']}", headers=AUTH).json()
    assert shown["speakers"] == assignment
    used = {"boxes": [[0, 0, 150, 160], [170, 0, 320, 160]], "source": "detected"}
    result = {
        "size_bytes": 5,
        "duration_seconds": 1.0,
        "width": 640,
        "height": 320,
        "engine": "preview",
        "speakers": used,
    }
    client.put(
        body["output"]["upload_url"], content=b"video", headers={"Content-Type": "video/mp4"}
    )
    done = client.post(
        f"/agent/jobs/{job['job_id']}/complete",
        headers=AGENT_AUTH,
        json={"claim_token": body["claim_token"], "result": result},
    )
    assert done.status_code == 200, done.text
    assert done.json()["speakers"] == used  # the result's, even with no report carrying it


def test_a_video_job_hands_the_agent_its_video_and_no_image(client: TestClient) -> None:
    video = mp4_bytes(0.4)
    job = post_form(client, {"video": video, "audio": wav_bytes()}).json()
    pull_one(client)
    assert claim(client, job["job_id"], ["image"]).status_code == 422
    body = claim(client, job["job_id"], ["image", "video"]).json()
    assert body["inputs"]["image_url"] is None
    assert client.get(body["inputs"]["video_url"]).content == video


# --- the state machine ---------------------------------------------------------------------


NOW = datetime(2026, 12, 1, tzinfo=UTC)


def a_job(**keys: str) -> jobs.Job:
    return jobs.new_job(
        job_id="j",
        owner="o",
        prompt="p",
        resolution=Resolution.P480,
        seed=None,
        image_key=keys.get("image", ""),
        audio_key="a",
        now=NOW,
        video_key=keys.get("video"),
        audio2_key=keys.get("audio2"),
    )


def test_a_job_needs_what_its_inputs_are_and_refusals_end_it() -> None:
    dubbing, pair = a_job(video="v"), a_job(image="i", audio2="b")
    assert a_job(image="i").needs == {Capability.IMAGE}
    assert dubbing.needs == {Capability.VIDEO} and dubbing.input_keys == ["v", "a"]
    assert pair.needs == {Capability.IMAGE, Capability.TWO_SPEAKERS}
    once = jobs.refuse_claim(pair, max_refusals=2, now=NOW)
    assert (once.status, once.refusals) == (JobStatus.PENDING, 1)
    twice = jobs.refuse_claim(once, max_refusals=2, now=NOW)
    assert (twice.status, twice.error_code) == (JobStatus.FAILED, FailureCode.NO_CAPABLE_AGENT)
    assert "image, two_speakers" in (twice.error_message or "")
    with pytest.raises(jobs.NotClaimable):
        jobs.refuse_claim(twice, max_refusals=2, now=NOW)
