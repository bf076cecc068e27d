"""A job request, validated into plain fields; each of its files came inline (multipart)
or was PUT through `/uploads` beforehand and is named by its upload id.

The HTTP layer streams inline files to spooled temporaries while checking their bytes; this
module turns the form's text fields and files into a `JobRequest`, in the order clients are
told about problems: prompt, resolution, seed, quality, parallel, then the files.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO

from contracts import Quality, Resolution
from contracts.jobs import Parallel
from contracts.media import WAV, MediaFormat
from edge_worker.domain.problems import invalid_input
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
    image: JobInput
    audio: JobInput
    parallel: Parallel = "off"
    webhook: WebhookTarget | None = None


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
    image, audio = (_input(name, text, files) for name in FILE_FIELDS)
    if isinstance(audio, ReceivedFile) and audio.format is WAV:
        check_wav_complete(audio.head, audio.size_bytes)
    webhook = parse_target(text.get("webhook_url"), (repeated or {}).get("webhook_events"))
    return JobRequest(
        prompt, resolution, seed, quality, image, audio, parallel=parallel, webhook=webhook
    )


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
    raise invalid_input(f"{name} is required: a file part, or {id_field} from POST /uploads", name)
