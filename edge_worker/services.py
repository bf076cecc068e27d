"""Client use cases of the edge: the glue between routes, the state machine and the ports.

Routes translate HTTP to these calls; these calls never see a request object. The agent
protocol's use cases are in `agent_service`.
"""

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from contracts import (
    ErrorCode,
    JobError,
    JobList,
    JobStatus,
    JobView,
    Quality,
    QueueMessage,
    Resolution,
    ResultView,
)
from contracts.media import SNIFF_BYTES, WAV, MediaKind
from edge_worker import idempotency, jobs, uploads
from edge_worker.errors import ApiError
from edge_worker.jobs import Job
from edge_worker.multipart_form import Form, UploadedFile
from edge_worker.ports import BlobStore, Clock, JobQueue, JobStore
from edge_worker.settings import EdgeSettings
from edge_worker.validation import (
    check_size,
    check_wav_complete,
    parse_prompt,
    parse_quality,
    parse_resolution,
    parse_seed,
    require_format,
)

log = logging.getLogger("edge_worker.jobs")

INPUT_URL_TTL = timedelta(hours=2)
RESULT_URL_TTL = timedelta(hours=6)
CAS_ATTEMPTS = 8


def input_key(job_id: str, field: str, extension: str) -> str:
    return f"inputs/{job_id}/{field}.{extension}"


def video_prefix(job_id: str) -> str:
    return f"videos/{job_id}/"


def video_key(job_id: str, attempt: int) -> str:
    """One key per attempt: a zombie agent of an old attempt can only overwrite its own
    upload, never the published result."""
    return f"{video_prefix(job_id)}{attempt}.mp4"


@dataclass(frozen=True)
class Services:
    """Everything the routes need, built once per runtime (local or Worker)."""

    settings: EdgeSettings
    store: JobStore
    blobs: BlobStore
    queue: JobQueue
    clock: Clock


class JobService:
    def __init__(self, services: Services) -> None:
        self.s = services

    # -- clients -----------------------------------------------------------------------

    async def create_from_form(
        self, owner: str, form: Form, idempotency_key: str | None = None
    ) -> JobView:
        prompt = parse_prompt(form.text.get("prompt"))
        resolution = parse_resolution(form.text.get("resolution"))
        seed = parse_seed(form.text.get("seed"))
        quality = parse_quality(form.text.get("quality"))
        for name in ("image", "audio"):
            if name not in form.files:
                raise ApiError(ErrorCode.INVALID_INPUT, f"{name} is required", {"field": name})
        image, audio = form.files["image"], form.files["audio"]
        if audio.format is WAV:
            check_wav_complete(audio.head, audio.size_bytes)

        async def create() -> Job:
            return await self._create(owner, prompt, resolution, seed, quality, image, audio)

        if idempotency_key is None:
            return await self.view(await create())
        request_print = idempotency.request_fingerprint(
            "multipart",
            prompt,
            resolution.value,
            str(seed),
            image.sha256,
            audio.sha256,
            quality=quality,
        )
        return await self._create_once(owner, idempotency_key, request_print, create)

    async def _create(
        self,
        owner: str,
        prompt: str,
        resolution: Resolution,
        seed: int | None,
        quality: Quality,
        image: UploadedFile,
        audio: UploadedFile,
    ) -> Job:
        job_id = str(uuid.uuid4())
        image_key = input_key(job_id, "image", image.format.extension)
        audio_key = input_key(job_id, "audio", audio.format.extension)
        await self.s.blobs.put(image_key, image.file, image.format.content_type)
        await self.s.blobs.put(audio_key, audio.file, audio.format.content_type)
        return await self._insert_job(
            job_id, owner, prompt, resolution, seed, quality, image_key, audio_key
        )

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
        """Record the job, then enqueue it: a job whose message is lost is re-sent by the
        sweep, while a message without a job would be refused at claim."""
        now = self.s.clock.now()
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
        await self.s.store.insert(job)
        await self.s.queue.send(QueueMessage(job_id=job_id, enqueued_at=now))
        log.info("job created", extra={"job_id": job_id, "owner": owner})
        return job

    # -- direct uploads ------------------------------------------------------------------

    def _limit(self, kind: MediaKind) -> int:
        settings = self.s.settings
        return settings.max_image_bytes if kind is MediaKind.IMAGE else settings.max_audio_bytes

    async def grant_uploads(
        self, owner: str, request: uploads.UploadsRequest
    ) -> uploads.UploadsResponse:
        wanted = {MediaKind.IMAGE: request.image, MediaKind.AUDIO: request.audio}
        if not any(wanted.values()):
            raise ApiError(ErrorCode.INVALID_INPUT, "declare an image, an audio file or both")
        now = self.s.clock.now()
        grants: dict[str, uploads.UploadGrant] = {}
        for kind, declared in wanted.items():
            if declared is None:
                continue
            limit = self._limit(kind)
            uploads.check_declared(kind, declared, limit)
            key = uploads.new_key(kind, declared.content_type)
            ticket = uploads.UploadTicket(
                owner, kind, key, declared.size_bytes, now + uploads.UPLOAD_ID_TTL
            )
            url_expires = now + uploads.UPLOAD_URL_TTL
            grants[kind.value] = uploads.UploadGrant(
                upload_id=uploads.issue(ticket, self.s.settings.signing_secret),
                url=self.s.blobs.presign_put(key, url_expires, declared.content_type),
                headers={"Content-Type": declared.content_type},
                expires_at=url_expires,
                max_bytes=limit,
                accepted_content_types=list(uploads.ACCEPTED_TYPES[kind]),
            )
        return uploads.UploadsResponse.model_validate(grants)

    async def _uploaded(self, owner: str, upload_id: str, kind: MediaKind) -> uploads.UploadTicket:
        """Check an uploaded object like a multipart part: it exists, fits, and its bytes
        are the kind of media it claims to be."""
        ticket = uploads.redeem(
            upload_id, self.s.settings.signing_secret, owner, kind, self.s.clock.now()
        )
        field = f"{kind.value}_upload_id"
        stored = await self.s.blobs.head(ticket.key)
        if stored is None:
            raise ApiError(
                ErrorCode.INVALID_INPUT,
                f"nothing was uploaded for {field}; PUT the file to its URL first",
                {"field": field},
            )
        check_size(kind.value, stored.size_bytes, self._limit(kind))
        head = await self.s.blobs.read_range(ticket.key, SNIFF_BYTES)
        media = require_format(kind.value, kind, head)
        if media is WAV:
            check_wav_complete(head, stored.size_bytes)
        return ticket

    async def create_from_uploads(
        self, owner: str, body: uploads.GenerateFromUploads, idempotency_key: str | None = None
    ) -> JobView:
        prompt = parse_prompt(body.prompt)
        image = await self._uploaded(owner, body.image_upload_id, MediaKind.IMAGE)
        audio = await self._uploaded(owner, body.audio_upload_id, MediaKind.AUDIO)

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
                    await self.s.store.delete_idempotency(record)
                raise

        if idempotency_key is None:
            return await self.view(await create())
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

    async def _take_uploads(
        self, owner: str, tickets: list[uploads.UploadTicket]
    ) -> list[idempotency.IdempotencyRecord]:
        """Each upload feeds one job: its inputs are deleted when that job ends."""
        now = self.s.clock.now()
        taken: list[idempotency.IdempotencyRecord] = []
        for ticket in tickets:
            record = idempotency.new_record(owner, f"upload:{ticket.key}", ticket.key, now)
            if not await self.s.store.insert_idempotency(record):
                for done in taken:
                    await self.s.store.delete_idempotency(done)
                raise ApiError(
                    ErrorCode.CONFLICT,
                    f"{ticket.kind.value} upload was already used for another job",
                    {"field": f"{ticket.kind.value}_upload_id"},
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
            raise ApiError(
                ErrorCode.INVALID_INPUT,
                f"Idempotency-Key must be 1-{idempotency.MAX_KEY_LENGTH} printable ASCII chars",
                {"header": "Idempotency-Key"},
            )
        now = self.s.clock.now()
        record = idempotency.new_record(owner, key, request_print, now)
        store = self.s.store
        for _ in range(CAS_ATTEMPTS):
            if await store.insert_idempotency(record):
                break
            existing = await store.get_idempotency(owner, key)
            decision = idempotency.decide(existing, request_print, now)
            if decision is idempotency.Decision.REPLAY:
                assert existing is not None and existing.job_id is not None
                return await self.view(await self.get_owned(owner, existing.job_id))
            if decision is idempotency.Decision.MISMATCH:
                raise ApiError(
                    ErrorCode.IDEMPOTENCY_KEY_REUSED,
                    "this Idempotency-Key was used for a different request",
                    {"header": "Idempotency-Key"},
                )
            if decision is idempotency.Decision.IN_PROGRESS:
                raise ApiError(
                    ErrorCode.CONFLICT,
                    "a request with this Idempotency-Key is still being processed; retry shortly",
                    {"header": "Idempotency-Key"},
                )
            if existing is not None:
                await store.delete_idempotency(existing)
        else:
            raise ApiError(ErrorCode.CONFLICT, "Idempotency-Key is contended; retry shortly")
        try:
            job = await create()
        except BaseException:
            await store.delete_idempotency(record)
            raise
        await store.finish_idempotency(record, job.id)
        return await self.view(job)

    async def get_owned(self, owner: str, job_id: str) -> Job:
        job = await self.s.store.get(job_id)
        if job is None or job.owner != owner:
            raise ApiError(ErrorCode.JOB_NOT_FOUND, f"no job {job_id}", {"job_id": job_id})
        return job

    async def list_owned(self, owner: str, limit: int, cursor: str | None) -> JobList:
        try:
            page = await self.s.store.list_for_owner(owner, limit, cursor)
        except ValueError:
            raise ApiError(
                ErrorCode.INVALID_INPUT, "malformed cursor", {"field": "cursor"}
            ) from None
        return JobList(
            jobs=[await self.view(job) for job in page.jobs], next_cursor=page.next_cursor
        )

    async def result(self, owner: str, job_id: str) -> ResultView:
        job = await self.get_owned(owner, job_id)
        if job.status is JobStatus.EXPIRED:
            raise ApiError(
                ErrorCode.RESULT_EXPIRED, "the result was deleted after its retention period"
            )
        if (
            job.status is not JobStatus.COMPLETED
            or job.result is None
            or job.result_key is None
            or job.expires_at is None
        ):
            raise ApiError(
                ErrorCode.RESULT_NOT_READY,
                f"job is {job.status}; the result exists once it is completed",
                {"status": job.status.value},
            )
        url, expires_at = self._result_link(job.result_key, job.expires_at)
        return ResultView(
            job_id=job.id,
            url=url,
            expires_at=expires_at,
            size_bytes=job.result.size_bytes,
            duration_seconds=job.result.duration_seconds,
            width=job.result.width,
            height=job.result.height,
        )

    def _result_link(self, key: str, result_expires_at: datetime) -> tuple[str, datetime]:
        """A download URL valid for at most `RESULT_URL_TTL`, never past the result itself."""
        expires_at = min(self.s.clock.now() + RESULT_URL_TTL, result_expires_at)
        return self.s.blobs.presign_get(key, expires_at), expires_at

    async def view(self, job: Job) -> JobView:
        result_url = None
        if job.status is JobStatus.COMPLETED and job.expires_at and job.result_key:
            result_url, _ = self._result_link(job.result_key, job.expires_at)
        queue_position = None
        if job.status is JobStatus.PENDING:
            queue_position = await self.s.store.count_pending_before(job)
        error = None
        if job.status is JobStatus.FAILED and job.error_code is not None:
            error = JobError(code=job.error_code, message=job.error_message or "")
        return JobView(
            job_id=job.id,
            status=job.status,
            progress=round(job.progress, 2),
            stage=job.stage,
            created_at=job.created_at,
            updated_at=job.updated_at,
            started_at=job.started_at,
            completed_at=job.completed_at,
            result_url=result_url,
            expires_at=job.expires_at,
            attempts=job.attempts,
            error=error,
            queue_position=queue_position,
            eta_seconds=job.eta_seconds if job.status is JobStatus.PROCESSING else None,
            resolution=job.resolution,
            quality=job.quality,
            engine=job.result.engine if job.result else None,
        )

    # -- agents ------------------------------------------------------------------------

    async def cancel(self, owner: str, job_id: str) -> JobView:
        job = await self.get_owned(owner, job_id)
        if job.status is not JobStatus.CANCELLED:
            now = self.s.clock.now()
            job = await self.transition(job_id, lambda j: jobs.cancel(j, now=now))
            log.info(
                "job cancelled", extra={"job_id": job_id, "was_claimed": bool(job.claim_token)}
            )
        return await self.view(job)

    async def transition(self, job_id: str, change: jobs.Transition) -> Job:
        """Apply `change` as a compare-and-swap, re-reading on a lost race."""
        for _ in range(CAS_ATTEMPTS):
            job = await self.s.store.get(job_id)
            if job is None:
                raise ApiError(ErrorCode.JOB_NOT_FOUND, f"no job {job_id}", {"job_id": job_id})
            try:
                updated = change(job)
            except jobs.JobStateError as exc:
                raise ApiError(ErrorCode.CONFLICT, str(exc), {"status": job.status.value}) from None
            if await self.s.store.replace(updated, expected_version=job.version):
                return updated
        raise ApiError(ErrorCode.CONFLICT, "job is being changed concurrently; retry")
