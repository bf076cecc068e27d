"""Creating jobs: from files sent inline, or from objects already uploaded; at most once
per `Idempotency-Key` (the rules are in `domain.idempotency`).

A job is recorded, then enqueued: a job whose message is lost is re-sent by the sweep,
while a message without a job would be refused at claim.
"""

import logging
import uuid
from collections.abc import Awaitable, Callable

from pydantic import BaseModel, ConfigDict, Field

from contracts import ErrorCode, JobView, Quality, QueueMessage, Resolution
from contracts.errors import ConflictDetails, HeaderDetails
from contracts.media import MediaKind
from edge_worker.domain import idempotency, jobs
from edge_worker.domain.idempotency import IdempotencyRecord
from edge_worker.domain.job_request import JobRequest
from edge_worker.domain.jobs import Job
from edge_worker.domain.problems import Problem, invalid_input
from edge_worker.domain.storage_keys import input_key
from edge_worker.domain.upload_tokens import UploadTicket
from edge_worker.domain.validation import PROMPT_MAX_CHARS, parse_prompt
from edge_worker.usecases.context import EdgeContext
from edge_worker.usecases.transitions import CAS_ATTEMPTS
from edge_worker.usecases.uploads import Uploads
from edge_worker.usecases.views import JobViews

log = logging.getLogger("edge_worker.jobs")


class GenerateFromUploads(BaseModel):
    """`POST /generate` with JSON: a job from objects already PUT through `/uploads`.
    Unknown fields are refused, so a misspelt one is an error rather than ignored."""

    model_config = ConfigDict(extra="forbid")

    image_upload_id: str = Field(min_length=1, max_length=2048)
    audio_upload_id: str = Field(min_length=1, max_length=2048)
    prompt: str = Field(max_length=PROMPT_MAX_CHARS * 4)
    resolution: Resolution = Resolution.P720
    seed: int | None = Field(default=None, ge=0, lt=2**32)
    quality: Quality = Field(
        default=Quality.STANDARD,
        description="`fast`: a distilled LoRA at 4 steps, several times quicker, lower quality",
    )


class JobCreation:
    def __init__(self, context: EdgeContext, views: JobViews, uploads: Uploads) -> None:
        self.context = context
        self.views = views
        self.uploads = uploads

    async def create_inline(
        self, owner: str, request: JobRequest, idempotency_key: str | None = None
    ) -> JobView:
        """A job from files that came with the request: they are stored under the job."""

        async def create() -> Job:
            return await self._create_inline(owner, request)

        if idempotency_key is None:
            return await self.views.view(await create())
        request_print = idempotency.request_fingerprint(
            "multipart",
            request.prompt,
            request.resolution.value,
            str(request.seed),
            request.image.sha256,
            request.audio.sha256,
            quality=request.quality,
        )
        return await self._create_once(owner, idempotency_key, request_print, create)

    async def _create_inline(self, owner: str, request: JobRequest) -> Job:
        job_id = str(uuid.uuid4())
        blobs = self.context.blobs
        image, audio = request.image, request.audio
        image_key = input_key(job_id, "image", image.format.extension)
        audio_key = input_key(job_id, "audio", audio.format.extension)
        await blobs.put(image_key, image.file, image.format.content_type)
        await blobs.put(audio_key, audio.file, audio.format.content_type)
        return await self._insert_job(
            job_id,
            owner,
            request.prompt,
            request.resolution,
            request.seed,
            request.quality,
            image_key,
            audio_key,
        )

    async def create_from_uploads(
        self, owner: str, body: GenerateFromUploads, idempotency_key: str | None = None
    ) -> JobView:
        prompt = parse_prompt(body.prompt)
        image = await self.uploads.uploaded(owner, body.image_upload_id, MediaKind.IMAGE)
        audio = await self.uploads.uploaded(owner, body.audio_upload_id, MediaKind.AUDIO)

        async def create() -> Job:
            used = await self._take_uploads(owner, [image, audio])
            try:
                return await self._insert_job(
                    str(uuid.uuid4()),
                    owner,
                    prompt,
                    body.resolution,
                    body.seed,
                    body.quality,
                    image.key,
                    audio.key,
                )
            except BaseException:
                for record in used:
                    await self.context.store.delete_idempotency(record)
                raise

        if idempotency_key is None:
            return await self.views.view(await create())
        request_print = idempotency.request_fingerprint(
            "uploads",
            prompt,
            body.resolution.value,
            str(body.seed),
            image.key,
            audio.key,
            quality=body.quality,
        )
        return await self._create_once(owner, idempotency_key, request_print, create)

    async def _insert_job(
        self,
        job_id: str,
        owner: str,
        prompt: str,
        resolution: Resolution,
        seed: int | None,
        quality: Quality,
        image_key: str,
        audio_key: str,
    ) -> Job:
        now = self.context.clock.now()
        job = jobs.new_job(
            job_id=job_id,
            owner=owner,
            prompt=prompt,
            resolution=resolution,
            seed=seed,
            quality=quality,
            image_key=image_key,
            audio_key=audio_key,
            now=now,
        )
        await self.context.store.insert(job)
        await self.context.queue.send(QueueMessage(job_id=job_id, enqueued_at=now))
        log.info("job created", extra={"job_id": job_id, "owner": owner})
        return job

    async def _take_uploads(
        self, owner: str, tickets: list[UploadTicket]
    ) -> list[IdempotencyRecord]:
        """Each upload feeds one job: its inputs are deleted when that job ends."""
        store = self.context.store
        now = self.context.clock.now()
        taken: list[IdempotencyRecord] = []
        for ticket in tickets:
            record = idempotency.new_record(owner, f"upload:{ticket.key}", ticket.key, now)
            if not await store.insert_idempotency(record):
                for done in taken:
                    await store.delete_idempotency(done)
                raise Problem(
                    ErrorCode.CONFLICT,
                    f"{ticket.kind.value} upload was already used for another job",
                    ConflictDetails(field=f"{ticket.kind.value}_upload_id"),
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
        record = idempotency.new_record(owner, key, request_print, now)
        store = self.context.store
        for _ in range(CAS_ATTEMPTS):
            if await store.insert_idempotency(record):
                break
            existing = await store.get_idempotency(owner, key)
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
