"""A job request whose files came inline (multipart), validated into plain fields.

The HTTP layer streams the files to spooled temporaries while checking their bytes; this
module turns its text fields and files into a `JobRequest`, in the order clients are told
about problems: prompt, resolution, seed, quality, then the files.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO

from contracts import Quality, Resolution
from contracts.media import WAV, MediaFormat
from edge_worker.domain.problems import invalid_input
from edge_worker.domain.validation import (
    check_wav_complete,
    parse_prompt,
    parse_quality,
    parse_resolution,
    parse_seed,
)

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
class JobRequest:
    prompt: str
    resolution: Resolution
    seed: int | None
    quality: Quality
    image: ReceivedFile
    audio: ReceivedFile


def job_request(text: Mapping[str, str], files: Mapping[str, ReceivedFile]) -> JobRequest:
    prompt = parse_prompt(text.get("prompt"))
    resolution = parse_resolution(text.get("resolution"))
    seed = parse_seed(text.get("seed"))
    quality = parse_quality(text.get("quality"))
    for name in FILE_FIELDS:
        if name not in files:
            raise invalid_input(f"{name} is required", name)
    image, audio = files["image"], files["audio"]
    if audio.format is WAV:
        check_wav_complete(audio.head, audio.size_bytes)
    return JobRequest(prompt, resolution, seed, quality, image, audio)
