"""A job request, validated into plain fields; each of its files came inline (multipart)
or was PUT through `/uploads` beforehand and is named by its upload id.

The HTTP layer streams inline files to spooled temporaries while checking their bytes; this
module turns the form's text fields and files into a `JobRequest`, in the order clients are
told about problems: prompt, resolution, seed, quality, parallel, then the files, then the
speakers, then the webhook.

A job animates an `image`, or dubs a `video` (exactly one of them); `audio2` makes it a
two-speaker job (`domain.speakers`). Only a single speaker's job from an image can be split
across agents (`parallel`).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO

from contracts import InputKind, Quality, Resolution, SpeakerMode
from contracts.jobs import Box, Parallel
from contracts.media import WAV, MediaFormat, MediaKind
from edge_worker.domain.problems import invalid_input
from edge_worker.domain.speakers import check_speaker_fields, parse_boxes_text, parse_speaker_mode
from edge_worker.domain.validation import (
    check_wav_complete,
    parse_parallel,
    parse_prompt,
    parse_quality,
    parse_resolution,
    parse_seed,
)
from edge_worker.domain.webhook_targets import WebhookTarget, parse_target

FILE_FIELDS = ("image", "audio")
OPTIONAL_FILE_FIELDS = ("video", "audio2")
"""`video` replaces `image` (dubbing); `audio2` is a second speaker's track."""
FIELD_KINDS = {
    "image": MediaKind.IMAGE,
    "video": MediaKind.VIDEO,
    "audio": MediaKind.AUDIO,
    "audio2": MediaKind.AUDIO,
}


@dataclass
class ReceivedFile:
    """A file read from the request, its format judged by its first bytes."""

    format: MediaFormat
    head: bytes
    size_bytes: int
    sha256: str
    file: IO[bytes]


@dataclass(frozen=True)
class UploadRef:
    """A file PUT through `/uploads`, named by its upload id; checked when the job is made."""

    upload_id: str


JobInput = ReceivedFile | UploadRef


@dataclass(frozen=True)
class JobRequest:
    prompt: str
    resolution: Resolution
    seed: int | None
    quality: Quality
    image: JobInput | None
    audio: JobInput
    parallel: Parallel = "off"
    webhook: WebhookTarget | None = None
    video: JobInput | None = None
    audio2: JobInput | None = None
    speaker_mode: SpeakerMode | None = None
    """Set exactly when `audio2` is (sequential unless the client asked otherwise)."""
    speaker_boxes: tuple[Box, Box] | None = None

    @property
    def input_kind(self) -> InputKind:
        return InputKind.IMAGE if self.video is None else InputKind.VIDEO

    def files(self) -> dict[str, JobInput]:
        """The request's files by field: the picture (image or video), audio, and audio2."""
        picture = ("video", self.video) if self.video is not None else ("image", self.image)
        named = [picture, ("audio", self.audio), ("audio2", self.audio2)]
        return {name: given for name, given in named if given is not None}


def upload_id_field(name: str) -> str:
    return f"{name}_upload_id"


def job_request(
    text: Mapping[str, str],
    files: Mapping[str, ReceivedFile],
    repeated: Mapping[str, list[str]] | None = None,
) -> JobRequest:
    """`repeated`: the values of fields that may be sent more than once (webhook_events)."""
    prompt = parse_prompt(text.get("prompt"))
    resolution = parse_resolution(text.get("resolution"))
    seed = parse_seed(text.get("seed"))
    quality = parse_quality(text.get("quality"))
    parallel = parse_parallel(text.get("parallel"))
    image = _optional_input("image", text, files)
    video = _optional_input("video", text, files)
    if image is not None and video is not None:
        raise invalid_input("send image or video, not both", "video")
    if image is None and video is None:
        image = _input("image", text, files)
    audio = _input("audio", text, files)
    audio2 = _optional_input("audio2", text, files)
    for name, track in (("audio", audio), ("audio2", audio2)):
        if isinstance(track, ReceivedFile) and track.format is WAV:
            check_wav_complete(track.head, track.size_bytes, name)
    mode = parse_speaker_mode(text.get("speaker_mode"))
    boxes = parse_boxes_text(text.get("speaker_boxes"))
    mode = check_speaker_fields(audio2 is not None, mode, boxes)
    check_parallel_fits(parallel, video, audio2)
    webhook = parse_target(text.get("webhook_url"), (repeated or {}).get("webhook_events"))
    return JobRequest(
        prompt,
        resolution,
        seed,
        quality,
        image,
        audio,
        parallel=parallel,
        webhook=webhook,
        video=video,
        audio2=audio2,
        speaker_mode=mode,
        speaker_boxes=boxes,
    )


def check_parallel_fits(
    parallel: Parallel, video: JobInput | None, audio2: JobInput | None
) -> None:
    """Segments take their picture from one still image and one track: a dubbing or
    two-speaker job runs whole on one agent."""
    if parallel != "off" and (video is not None or audio2 is not None):
        raise invalid_input(
            "parallel splits a single speaker's job from an image: leave it out (or send "
            "off) with video or audio2",
            "parallel",
        )


def _optional_input(
    name: str, text: Mapping[str, str], files: Mapping[str, ReceivedFile]
) -> JobInput | None:
    if name in files or text.get(upload_id_field(name), "").strip():
        return _input(name, text, files)
    return None


def _input(name: str, text: Mapping[str, str], files: Mapping[str, ReceivedFile]) -> JobInput:
    """The file part `name`, or the upload named by its `<name>_upload_id` field."""
    id_field = upload_id_field(name)
    upload_id = text.get(id_field, "").strip()
    if name in files and upload_id:
        raise invalid_input(f"send {name} or {id_field}, not both", id_field)
    if name in files:
        return files[name]
    if upload_id:
        return UploadRef(upload_id)
    hint = " (or video, to dub one)" if name == "image" else ""
    raise invalid_input(
        f"{name} is required{hint}: a file part, or {id_field} from POST /uploads", name
    )
