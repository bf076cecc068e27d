"""Creating jobs: from files sent inline, or from objects already uploaded; at most once
per `Idempotency-Key` (the rules are in `domain.idempotency`).

A job is recorded, then enqueued: a job whose message is lost is re-sent by the sweep,
while a message without a job would be refused at claim.
"""

import json
import logging
import uuid
from collections.abc import Awaitable, Callable

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from contracts import ErrorCode, JobView, Quality, QueueMessage, Resolution, SpeakerMode
from contracts.errors import ConflictDetails, HeaderDetails
from contracts.jobs import Parallel
from contracts.media import HEADER_SCAN_BYTES, image_size
from contracts.webhooks import WebhookEventType
from edge_worker.domain import idempotency, jobs, speakers
from edge_worker.domain.idempotency import IdempotencyRecord
from edge_worker.domain.job_request import (
    JobInput,
    JobRequest,
    ReceivedFile,
    UploadRef,
    check_parallel_fits,
)
from edge_worker.domain.jobs import Job
from edge_worker.domain.problems import Problem, invalid_input
from edge_worker.domain.quotas import Caller
from edge_worker.domain.storage_keys import input_key
from edge_worker.domain.upload_tokens import UploadTicket
from edge_worker.domain.validation import (
    PARALLEL_RULE,
    PROMPT_MAX_CHARS,
    check_content,
    parse_parallel,
    parse_prompt,
)
from edge_worker.domain.webhook_targets import (
    URL_MAX_CHARS,
    check_destination,
    parse_target,
)
from edge_worker.usecases.admission import Admission
from edge_worker.usecases.context import EdgeContext
from edge_worker.usecases.quotas import Quotas
from edge_worker.usecases.transitions import CAS_ATTEMPTS
from edge_worker.usecases.uploads import Uploads
from edge_worker.usecases.views import JobViews

log = logging.getLogger("edge_worker.jobs")


UPLOAD_ID_MAX_CHARS = 2048


class GenerateFromUploads(BaseModel):
    """`POST /generate` with JSON: a job from objects already PUT through `/uploads`.
    Unknown fields are refused, so a misspelt one is an error rather than ignored."""

    model_config = ConfigDict(extra="forbid")

    image_upload_id: str | None = Field(
        default=None, min_length=1, max_length=UPLOAD_ID_MAX_CHARS, description="or video"
    )
    audio_upload_id: str = Field(min_length=1, max_length=UPLOAD_ID_MAX_CHARS)
    prompt: str = Field(max_length=PROMPT_MAX_CHARS * 4)
    resolution: Resolution = Resolution.P720
    seed: StrictInt | None = Field(default=None, ge=0, lt=2**32)
    quality: Quality = Field(
        default=Quality.STANDARD,
        description="`fast`: a distilled LoRA at 4 steps, several times quicker, lower quality",
    )
    parallel: Parallel = Field(
        default="off",
        description="`off`, `auto`, or at most this many segments (2-32) rendered on as many "
        "GPU agents at once and stitched",
    )

    @field_validator("parallel", mode="before")
    @classmethod
    def _parallel(cls, value: object) -> object:
        """The form's rule, so that both bodies say the same about a wrong value."""
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise ValueError(PARALLEL_RULE)
        try:
            return parse_parallel(value)
        except Problem:
            raise ValueError(PARALLEL_RULE) from None

    webhook_url: str | None = Field(
        default=None,
        max_length=URL_MAX_CHARS,
        description="http(s) URL to POST signed events to (docs/API.md#webhooks)",
    )
    webhook_events: list[WebhookEventType] | None = Field(
        default=None,
        min_length=1,
        description="Events to send; default: job.completed, job.failed, job.cancelled",
    )
    video_upload_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=UPLOAD_ID_MAX_CHARS,
        description="a video to dub, instead of image_upload_id",
    )
    audio2_upload_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=UPLOAD_ID_MAX_CHARS,
        description="a second speaker's track: a two-speaker job",
    )
    speaker_mode: SpeakerMode | None = Field(
        default=None, description="with audio2: `sequential` (default) or `simultaneous`"
    )
    speaker_boxes: (
        tuple[
            tuple[StrictInt, StrictInt, StrictInt, StrictInt],
            tuple[StrictInt, StrictInt, StrictInt, StrictInt],
        ]
        | None
    ) = Field(
        default=None,
        description="with audio2: each speaker's [x1, y1, x2, y2] in the image's pixels",
    )

    def job_request(self) -> JobRequest:
        prompt = parse_prompt(self.prompt)
        if (self.image_upload_id is None) == (self.video_upload_id is None):
            raise invalid_input(
                "send exactly one of image_upload_id and video_upload_id", "image_upload_id"
            )
        boxes = (
            None
            if self.speaker_boxes is None
            else speakers.check_box_shape([list(box) for box in self.speaker_boxes])
        )
        audio2 = None if self.audio2_upload_id is None else UploadRef(self.audio2_upload_id)
        mode = speakers.check_speaker_fields(audio2 is not None, self.speaker_mode, boxes)
        video = None if self.video_upload_id is None else UploadRef(self.video_upload_id)
        check_parallel_fits(self.parallel, video, audio2)
        return JobRequest(
            prompt=prompt,
            resolution=self.resolution,
            seed=self.seed,
            quality=self.quality,
            image=None if self.image_upload_id is None else UploadRef(self.image_upload_id),
            audio=UploadRef(self.audio_upload_id),
            parallel=self.parallel,
            webhook=parse_target(self.webhook_url, self.webhook_events),
            video=video,
            audio2=audio2,
            speaker_mode=mode,
            speaker_boxes=boxes,
        )


class JobCreation:
    def __init__(
        self,
        context: EdgeContext,
        views: JobViews,
        uploads: Uploads,
        quotas: Quotas,
        admission: Admission,
    ) -> None:
        self.context = context
        self.views = views
        self.uploads = uploads
        self.quotas = quotas
        self.admission = admission

    async def create(
        self, caller: Caller, request: JobRequest, idempotency_key: str | None = None
    ) -> JobView:
        """A job from its files: those sent inline are stored under the job; uploaded ones
        are checked (exist, fit, right media) and each feeds this job only. The caller's
        job limits apply to a new job, not to a replay of an `Idempotency-Key`."""
        owner = caller.owner
        inputs = request.files()
        settings = self.context.settings
        if request.webhook is not None:
            check_destination(request.webhook, settings.webhook_allow_private)
        seconds: dict[str, float | None] = {}
        sizes: dict[str, tuple[int, int] | None] = {}
        for name, given in inputs.items():
            if isinstance(given, ReceivedFile):
                prefix = _prefix(given)
                seconds[name] = check_content(
                    given.format,
                    prefix,
                    given.size_bytes,
                    settings.max_image_pixels,
                    settings.max_audio_seconds,
                    settings.max_video_seconds,
                )
                sizes[name] = image_size(prefix)
        checked = {
            name: await self.uploads.uploaded(owner, given.upload_id, name)
            for name, given in inputs.items()
            if isinstance(given, UploadRef)
        }
        tickets = {name: upload.ticket for name, upload in checked.items()}
        etags = {name: upload.etag for name, upload in checked.items()}
        seconds.update((name, upload.audio_seconds) for name, upload in checked.items())
        sizes.update((name, upload.picture_size) for name, upload in checked.items())
        if request.audio2 is not None:
            speakers.check_two_speakers(
                request.input_kind, sizes.get("image"), request.speaker_boxes
            )

        async def create() -> Job:
            load = await self.quotas.check_new_job(caller)
            held = self.admission.holds_back(load.queued)
            return await self._create_job(
                owner,
                request,
                inputs,
                tickets,
                etags,
                held,
                _audio_seconds(seconds, request.speaker_mode),
            )

        if idempotency_key is None:
            return await self.views.view(await create())
        refs = [
            given.sha256 if isinstance(given, ReceivedFile) else tickets[name].key
            for name, given in inputs.items()
        ]
        request_print = idempotency.request_fingerprint(
            _source(tickets, len(inputs)),
            request.prompt,
            request.resolution.value,
            str(request.seed),
            *_refs_with_roles(request, refs),
            *([request.webhook.fingerprint] if request.webhook else []),
            quality=request.quality,
            parallel=request.parallel,
        )
        return await self._create_once(owner, idempotency_key, request_print, create)

    async def _create_job(
        self,
        owner: str,
        request: JobRequest,
        inputs: dict[str, JobInput],
        tickets: dict[str, UploadTicket],
        etags: dict[str, str],
        held: bool,
        audio_seconds: float | None,
    ) -> Job:
        job_id = str(uuid.uuid4())
        used = await self._take_uploads(owner, tickets)
        try:
            keys: dict[str, str] = {}
            for name, given in inputs.items():
                if isinstance(given, ReceivedFile):
                    keys[name] = input_key(job_id, name, given.format.extension)
                    await self.context.blobs.put(keys[name], given.file, given.format.content_type)
                else:
                    keys[name] = tickets[name].key
            return await self._insert_job(job_id, owner, request, keys, etags, held, audio_seconds)
        except BaseException:
            for record in used:
                await self.context.store.delete_idempotency(record)
            raise

    async def _insert_job(
        self,
        job_id: str,
        owner: str,
        request: JobRequest,
        keys: dict[str, str],
        etags: dict[str, str],
        held: bool,
        audio_seconds: float | None,
    ) -> Job:
        """Recorded, then enqueued unless `held` back for fair queueing (`Admission`)."""
        now = self.context.clock.now()
        job = jobs.new_job(
            job_id=job_id,
            owner=owner,
            prompt=request.prompt,
            resolution=request.resolution,
            seed=request.seed,
            quality=request.quality,
            image_key=keys.get("image", ""),
            audio_key=keys["audio"],
            now=now,
            image_etag=etags.get("image"),
            audio_etag=etags.get("audio"),
            held=held,
            audio_seconds=audio_seconds,
            parallel=request.parallel,
            webhook_url=request.webhook.url if request.webhook else None,
            webhook_events=request.webhook.events if request.webhook else frozenset(),
            video_key=keys.get("video"),
            video_etag=etags.get("video"),
            audio2_key=keys.get("audio2"),
            audio2_etag=etags.get("audio2"),
            speaker_mode=request.speaker_mode,
            speaker_boxes=request.speaker_boxes,
        )
        await self.context.store.insert(job)
        if not held:
            await self.context.queue.send(QueueMessage(job_id=job_id, enqueued_at=now))
        log.info("job created", extra={"job_id": job_id, "held": held})
        return job

    async def _take_uploads(
        self, owner: str, tickets: dict[str, UploadTicket]
    ) -> list[IdempotencyRecord]:
        """Each upload feeds one job: its inputs are deleted when that job ends."""
        store = self.context.store
        now = self.context.clock.now()
        taken: list[IdempotencyRecord] = []
        for name, ticket in tickets.items():
            record = idempotency.new_record(
                owner, idempotency.upload_key(ticket.key), ticket.key, now
            )
            if not await store.insert_idempotency(record):
                for done in taken:
                    await store.delete_idempotency(done)
                raise Problem(
                    ErrorCode.CONFLICT,
                    f"{name} upload was already used for another job",
                    ConflictDetails(field=f"{name}_upload_id"),
                )
            taken.append(record)
        return taken

    async def _create_once(
        self,
        owner: str,
        key: str,
        request_print: str,
        create: Callable[[], Awaitable[Job]],
    ) -> JobView:
        """Run `create` at most once per (owner, key) and request; see `idempotency`."""
        if not idempotency.valid_key(key):
            raise invalid_input(
                f"Idempotency-Key must be 1-{idempotency.MAX_KEY_LENGTH} printable ASCII chars",
                "Idempotency-Key",
            )
        now = self.context.clock.now()
        record = idempotency.new_record(owner, idempotency.client_key(key), request_print, now)
        store = self.context.store
        for _ in range(CAS_ATTEMPTS):
            if await store.insert_idempotency(record):
                break
            existing = await store.get_idempotency(owner, record.key)
            decision = idempotency.decide(existing, request_print, now)
            if decision is idempotency.Decision.REPLAY:
                assert existing is not None and existing.job_id is not None
                return await self.views.status(owner, existing.job_id)
            if decision is idempotency.Decision.MISMATCH:
                raise Problem(
                    ErrorCode.IDEMPOTENCY_KEY_REUSED,
                    "this Idempotency-Key was used for a different request",
                    HeaderDetails(header="Idempotency-Key"),
                )
            if decision is idempotency.Decision.IN_PROGRESS:
                raise Problem(
                    ErrorCode.CONFLICT,
                    "a request with this Idempotency-Key is still being processed; retry shortly",
                    ConflictDetails(header="Idempotency-Key"),
                )
            if existing is not None:
                await store.delete_idempotency(existing)
        else:
            raise Problem(ErrorCode.CONFLICT, "Idempotency-Key is contended; retry shortly")
        try:
            job = await create()
        except BaseException:
            await store.delete_idempotency(record)
            raise
        await store.finish_idempotency(record, job.id)
        return await self.views.view(job)


def _prefix(given: ReceivedFile) -> bytes:
    """The file's first `HEADER_SCAN_BYTES`, leaving it rewound for storing."""
    given.file.seek(0)
    head = given.file.read(HEADER_SCAN_BYTES)
    given.file.seek(0)
    return head


def _source(tickets: dict[str, UploadTicket], files: int) -> str:
    """Where a request's files came from, so the same bytes sent another way are another
    request: `multipart`, `uploads`, or `mixed`."""
    if not tickets:
        return "multipart"
    return "uploads" if len(tickets) == files else "mixed"


def _refs_with_roles(request: JobRequest, refs: list[str]) -> list[str]:
    """An image job with one speaker prints as it always did (so keys recorded before
    dubbing still match their retries); a video, a second track and its layout add their
    own marks, so the same bytes in another role are another request."""
    marked = [f"video:{refs[0]}", *refs[1:]] if request.video is not None else list(refs)
    if request.speaker_mode is not None:
        marked += [request.speaker_mode.value, json.dumps(request.speaker_boxes)]
    return marked


def _audio_seconds(seconds: dict[str, float | None], mode: SpeakerMode | None) -> float | None:
    """The video's length, when headers tell: what is metered and what the pool plans GPU
    time by. Two speakers one after the other last both tracks; at once, the longer one."""
    tracks = [seconds.get(name) for name in ("audio", "audio2") if name in seconds]
    known = [track for track in tracks if track is not None]
    if len(known) != len(tracks) or not known:
        return None
    return max(known) if mode is SpeakerMode.SIMULTANEOUS else sum(known)
