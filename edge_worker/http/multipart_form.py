"""Streaming `multipart/form-data` reader with per-field limits enforced as bytes arrive.

File parts go to spooled temporary files (memory up to `spool_bytes`, disk beyond), so a
request of any size never sits in memory whole. A part that breaks a rule is refused as soon
as the rule is broken; the rest of the body is read and discarded (bounded by
`discard_limit`) so that clients which send the whole body first still get the error reply.
"""

import hashlib
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import IO

from multipart import MultipartError, MultipartSegment, PushMultipartParser, parse_options_header

from contracts import ErrorCode
from contracts.errors import TooLargeDetails
from contracts.media import SNIFF_BYTES, MediaFormat, MediaKind
from edge_worker.domain.job_request import ReceivedFile
from edge_worker.domain.problems import Problem, invalid_input
from edge_worker.domain.validation import require_format


@dataclass(frozen=True)
class FileRule:
    kind: MediaKind
    max_bytes: int


@dataclass(frozen=True)
class FormRules:
    files: dict[str, FileRule]
    text_max_bytes: dict[str, int]
    max_total_bytes: int
    too_large_hint: str = ""
    repeatable: frozenset[str] = frozenset()  # text fields that may be sent more than once
    spool_bytes: int = 1024 * 1024
    discard_limit: int = 256 * 1024 * 1024

    def too_large(self) -> Problem:
        return Problem(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"request body is larger than {self.max_total_bytes / (1024 * 1024):g} MiB"
            + self.too_large_hint,
            TooLargeDetails(limit_bytes=self.max_total_bytes),
        )


@dataclass
class Form:
    files: dict[str, ReceivedFile] = field(default_factory=dict)
    text: dict[str, str] = field(default_factory=dict)
    repeated: dict[str, list[str]] = field(default_factory=dict)

    def close(self) -> None:
        for upload in self.files.values():
            upload.file.close()


def boundary_of(content_type: str | None) -> str:
    mime, options = parse_options_header(content_type or "")
    if mime != "multipart/form-data" or not options.get("boundary"):
        raise invalid_input("send multipart/form-data with the fields image, audio and prompt")
    return options["boundary"]


class _PartWriter:
    """Collects one part's bytes, checking format and size as they arrive."""

    def __init__(self, segment: MultipartSegment, rules: FormRules) -> None:
        self.name = segment.name
        self.file_rule = rules.files.get(segment.name)
        text_limit = rules.text_max_bytes.get(segment.name)
        if self.file_rule is None and text_limit is None:
            raise invalid_input(f"unknown field {segment.name!r}", segment.name)
        self.limit = self.file_rule.max_bytes if self.file_rule else (text_limit or 0)
        self.repeatable = segment.name in rules.repeatable
        self.size = 0
        self.head = b""
        self.format: MediaFormat | None = None
        self.digest = hashlib.sha256()
        self.buffer: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=rules.spool_bytes)  # noqa: SIM115 - handed to the Form

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            if self.file_rule is None:
                raise invalid_input(f"{self.name} is too long", self.name)
            raise Problem(
                ErrorCode.PAYLOAD_TOO_LARGE,
                f"{self.name} is larger than the limit of {self.limit / (1024 * 1024):g} MiB",
                TooLargeDetails(limit_bytes=self.limit, field=self.name),
            )
        if len(self.head) < SNIFF_BYTES:
            self.head += chunk[: SNIFF_BYTES - len(self.head)]
            if len(self.head) >= SNIFF_BYTES:
                self._check_format()
        self.buffer.write(chunk)
        self.digest.update(chunk)

    def _check_format(self) -> None:
        if self.file_rule and self.format is None:
            self.format = require_format(self.name, self.file_rule.kind, self.head)

    def finish(self, form: Form) -> None:
        if self.name in form.files or self.name in form.text:
            raise invalid_input(f"field {self.name!r} sent twice", self.name)
        if self.file_rule is None:
            self.buffer.seek(0)
            try:
                value = self.buffer.read().decode("utf-8")
                if self.repeatable:
                    form.repeated.setdefault(self.name, []).append(value)
                else:
                    form.text[self.name] = value
            except UnicodeDecodeError:
                raise invalid_input(f"{self.name} must be UTF-8 text", self.name) from None
            finally:
                self.buffer.close()
            return
        if self.size == 0:
            raise invalid_input(f"{self.name} is empty", self.name)
        self._check_format()
        assert self.format is not None
        self.buffer.seek(0)
        form.files[self.name] = ReceivedFile(
            self.format, self.head, self.size, self.digest.hexdigest(), self.buffer
        )


async def read_form(
    chunks: AsyncIterator[bytes], content_type: str | None, rules: FormRules
) -> Form:
    boundary = boundary_of(content_type)
    form = Form()
    writer: _PartWriter | None = None
    error: Problem | None = None
    discarded = 0
    received = 0
    try:
        with PushMultipartParser(boundary, max_segment_count=16, strict=True) as parser:
            async for chunk in chunks:
                received += len(chunk)
                if error is None and received > rules.max_total_bytes:
                    error = rules.too_large()
                    if writer is not None:
                        writer.buffer.close()
                        writer = None
                if error is not None:
                    discarded += len(chunk)
                    if discarded > rules.discard_limit:
                        break
                    continue
                try:
                    for event in parser.parse(chunk):
                        if isinstance(event, MultipartSegment):
                            writer = _PartWriter(event, rules)
                        elif event is None:
                            assert writer is not None
                            writer.finish(form)
                            writer = None
                        else:
                            assert writer is not None
                            writer.write(event)
                except Problem as exc:
                    error = exc
                    if writer is not None:
                        writer.buffer.close()
                        writer = None
            if error is None:
                parser.close()
    except MultipartError as exc:  # malformed, or past the parser's header limits
        if writer is not None:
            writer.buffer.close()
        if error is None:
            form.close()
            raise invalid_input(f"malformed multipart body: {exc}") from None
    if error is not None:
        form.close()
        raise error
    return form
