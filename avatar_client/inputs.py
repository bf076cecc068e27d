"""What the client accepts as an image, a video or an audio file, made into one re-readable
`Media`.

Paths, bytes and binary file objects are used in place; an http(s) URL is streamed by the
client into a spooled temporary file (`Spool`), its size limit enforced as it arrives.
"""

import io
import mimetypes
import os
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO
from urllib.parse import unquote, urlsplit

from avatar_client.errors import InvalidInput, PayloadTooLarge
from contracts.media import SNIFF_BYTES, MediaKind, sniff

MediaSource = str | os.PathLike[str] | bytes | bytearray | IO[bytes]
"""A path, the bytes themselves, a binary file object, or an http(s) URL string."""

CHUNK_BYTES = 1024 * 1024
SPOOL_IN_MEMORY_BYTES = 8 * 1024 * 1024
"""A fetched file larger than this moves from memory to a temporary file."""


@dataclass
class Media:
    """One input file: readable from its start any number of times (a retry re-sends it)."""

    kind: MediaKind
    filename: str
    size: int
    content_type: str
    stream: IO[bytes]
    start: int
    owned: bool
    """Whether `close()` closes `stream` (a file we opened or spooled, not the caller's)."""
    name: str = ""
    """The request's field for it when not its kind's (`audio2`, a second speaker's track)."""

    @property
    def field(self) -> str:
        return self.name or self.kind.value

    def rewind(self) -> IO[bytes]:
        self.stream.seek(self.start)
        return self.stream

    def chunks(self) -> Iterator[bytes]:
        stream = self.rewind()
        remaining = self.size
        while remaining > 0:
            chunk = stream.read(min(CHUNK_BYTES, remaining))
            if not chunk:
                raise InvalidInput(
                    f"{self.kind.value} ended after {self.size - remaining} of {self.size} bytes"
                )
            remaining -= len(chunk)
            yield chunk

    def close(self) -> None:
        if self.owned:
            self.stream.close()

    def __enter__(self) -> "Media":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def job_inputs(
    image: MediaSource | None,
    video: MediaSource | None,
    audio: MediaSource,
    audio2: MediaSource | None,
) -> list[tuple[MediaKind, MediaSource, str]]:
    """A job's files as (kind, source, field name when not the kind's): the picture (an
    image, or a video to dub: exactly one), the audio, and a second speaker's track."""
    if (image is None) == (video is None):
        raise InvalidInput("give an image or a video to dub, exactly one of them")
    picture = (MediaKind.IMAGE, image, "") if video is None else (MediaKind.VIDEO, video, "")
    files: list[tuple[MediaKind, MediaSource | None, str]] = [picture, (MediaKind.AUDIO, audio, "")]
    if audio2 is not None:
        files.append((MediaKind.AUDIO, audio2, "audio2"))
    return [(kind, source, name) for kind, source, name in files if source is not None]


def is_url(source: MediaSource) -> bool:
    return isinstance(source, str) and source.lower().startswith(("http://", "https://"))


def open_media(kind: MediaKind, source: MediaSource) -> Media:
    """A local source as Media; URLs go through `Spool` instead."""
    if isinstance(source, bytes | bytearray):
        return _media(kind, f"{kind.value}.bin", io.BytesIO(bytes(source)), owned=True)
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.is_file():
            raise InvalidInput(f"{kind.value} file not found: {path}")
        return _media(kind, path.name, path.open("rb"), owned=True)
    name = Path(str(getattr(source, "name", "") or f"{kind.value}.bin")).name
    # httpx rewinds file parts to 0, so a stream read from elsewhere is copied first.
    if not _seekable(source) or source.tell() != 0:
        spool = Spool(kind, name, limit=None)
        for chunk in iter(lambda: source.read(CHUNK_BYTES), b""):
            spool.write(chunk)
        return spool.finish()
    return _media(kind, name, source, owned=False)


class Spool(AbstractContextManager["Spool"]):
    """Collects a streamed file (a URL's body) into a temporary file, refusing more than
    `limit` bytes as soon as they arrive rather than after the download."""

    def __init__(self, kind: MediaKind, filename: str, limit: int | None) -> None:
        self.kind = kind
        self.filename = filename
        self.limit = limit
        self._file: IO[bytes] = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - Media closes it
            max_size=SPOOL_IN_MEMORY_BYTES
        )
        self._size = 0
        self._done = False

    @classmethod
    def for_url(cls, kind: MediaKind, url: str, limit: int | None) -> "Spool":
        name = Path(unquote(urlsplit(url).path)).name or f"{kind.value}.bin"
        return cls(kind, name, limit)

    def write(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self.limit is not None and self._size > self.limit:
            raise PayloadTooLarge(
                f"{self.kind.value} is larger than the server's limit of {self.limit} bytes",
                code="PAYLOAD_TOO_LARGE",
                details={"field": self.kind.value, "limit_bytes": self.limit},
            )
        self._file.write(chunk)

    def finish(self) -> Media:
        self._done = True
        self._file.seek(0)
        return _media(self.kind, self.filename, self._file, owned=True)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._done:
            self._file.close()


def _seekable(stream: IO[bytes]) -> bool:
    try:
        return stream.seekable()
    except (AttributeError, ValueError):
        return False


def _media(kind: MediaKind, filename: str, stream: IO[bytes], *, owned: bool) -> Media:
    start = stream.tell()
    size = stream.seek(0, io.SEEK_END) - start
    stream.seek(start)
    head = stream.read(SNIFF_BYTES)
    stream.seek(start)
    media_format = sniff(head)
    # The server judges by content; this type is what /uploads needs to be declared.
    content_type = (
        media_format.content_type
        if media_format is not None
        else mimetypes.guess_type(filename)[0] or "application/octet-stream"
    )
    return Media(kind, filename, size, content_type, stream, start, owned)
