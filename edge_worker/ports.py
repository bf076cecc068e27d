"""The small interfaces the use cases need, and the types they exchange; adapters live
under `adapters/`."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import IO, Protocol

from contracts import JobStatus, QueueMessage
from contracts.webhooks import WebhookEventType, WebhookMessage
from edge_worker.domain.api_keys import ApiKey
from edge_worker.domain.idempotency import IdempotencyRecord
from edge_worker.domain.jobs import Job
from edge_worker.domain.pool import Backlog, PodActivity
from edge_worker.domain.quotas import Bucket, OwnerLoad
from edge_worker.domain.usage import UsagePeriod, UsageRow
from edge_worker.domain.webhook_deliveries import Attempt, SigningSecrets, WebhookEvent


class Clock(Protocol):
    def now(self) -> datetime: ...


class SweepKind(StrEnum):
    """What the maintenance sweep looks for; each kind is one indexed query."""

    LOST = "lost"  # processing, heartbeat older than the cutoff
    EXPIRED = "expired"  # completed, expires_at at or before the cutoff
    INPUTS_LEFT = "inputs_left"  # terminal, inputs not deleted yet
    STRANDED = "stranded"  # pending, last enqueued before the cutoff
    SPLIT = "split"  # split across segments, unchanged since the cutoff


@dataclass(frozen=True)
class JobPage:
    jobs: list[Job]
    next_cursor: str | None


class JobStore(Protocol):
    async def insert(self, job: Job) -> None: ...

    async def get(self, job_id: str) -> Job | None: ...

    async def insert_child(self, job: Job) -> bool:
        """Insert a split job's child unless one with its id or (parent, task, index)
        exists; True when this call inserted it."""
        ...

    async def children(self, parent_id: str) -> list[Job]: ...

    async def agents_seen(self, since: datetime) -> int:
        """Distinct agents that claimed or heartbeated a job at or after `since`."""
        ...

    async def replace(self, job: Job, expected_version: int) -> bool:
        """Compare-and-swap: write `job` only if the stored version is still `expected_version`."""
        ...

    async def count_pending_before(self, job: Job) -> int:
        """Jobs agents will claim before this pending one: the queued jobs ahead of it by
        enqueue time, or for a held one, as `domain.admission.jobs_ahead` reckons."""
        ...

    async def owner_load(self, owner: str, since: datetime) -> OwnerLoad:
        """`owner`'s unfinished and queued jobs, and video seconds completed since `since`."""
        ...

    async def held_jobs(self, owner: str, limit: int) -> list[Job]:
        """`owner`'s held jobs (pending, not enqueued), oldest first."""
        ...

    async def owners_with_held(self, limit: int) -> list[str]: ...

    async def list_for_owner(
        self,
        owner: str,
        limit: int,
        cursor: str | None,
        statuses: frozenset[JobStatus] = frozenset(),
    ) -> JobPage:
        """Newest first, only jobs in `statuses` unless it is empty; raises ValueError for a
        cursor this store did not hand out."""
        ...

    async def find_for_sweep(self, kind: SweepKind, cutoff: datetime, limit: int) -> list[Job]: ...

    async def input_keys_in_use(self, keys: list[str]) -> set[str]:
        """Those of `keys` that a job whose inputs are not deleted yet reads."""
        ...

    async def usage(self, period: UsagePeriod, owner: str | None = None) -> list[UsageRow]:
        """Daily buckets of the jobs created in `period`, of `owner` or of every owner,
        ordered by owner, day and quality."""
        ...

    async def get_idempotency(self, owner: str, key: str) -> IdempotencyRecord | None: ...

    async def insert_idempotency(self, record: IdempotencyRecord) -> bool:
        """Insert unless a record for (owner, key) exists; True when inserted."""
        ...

    async def finish_idempotency(self, record: IdempotencyRecord, job_id: str) -> bool: ...

    async def delete_idempotency(self, record: IdempotencyRecord) -> None:
        """Delete exactly this record (matched by its creation time), never a newer one."""
        ...

    async def purge_idempotency(self, before: datetime) -> int: ...


@dataclass(frozen=True)
class BlobInfo:
    key: str
    size_bytes: int
    etag: str  # quoted, as the `ETag` header of a GET of the object carries it


class BlobStore(Protocol):
    async def put(self, key: str, body: IO[bytes], content_type: str) -> int: ...

    async def head(self, key: str) -> BlobInfo | None: ...

    async def read_range(self, key: str, length: int) -> bytes: ...

    async def delete(self, keys: list[str]) -> None: ...

    async def list_keys(self, prefix: str) -> list[str]: ...

    def presign_get(self, key: str, expires_at: datetime) -> str: ...

    def presign_put(self, key: str, expires_at: datetime, content_type: str) -> str:
        """A PUT of at most the store's size limit, that may overwrite (agents' results)."""
        ...

    def presign_upload(
        self, key: str, expires_at: datetime, content_type: str, size_bytes: int
    ) -> str:
        """A PUT of exactly `size_bytes` that can create the object once and never replace
        it: a client's upload, checked at `/generate`, cannot be swapped afterwards."""
        ...


class JobQueue(Protocol):
    async def send(self, message: QueueMessage, delay_seconds: int = 0) -> None: ...


class BucketStore(Protocol):
    """The rate limit's token buckets, one row per owner."""

    async def get_bucket(self, owner: str) -> Bucket | None: ...

    async def save_bucket(self, owner: str, bucket: Bucket, expected: Bucket | None) -> bool:
        """Compare-and-set: write `bucket` only if the stored one is still `expected` (None:
        no row yet); True when written, so two requests cannot both take the last token."""
        ...


class KeyStore(Protocol):
    """Stored API keys, looked up by the hash of the secret (one indexed read per request)."""

    async def insert(self, key: ApiKey) -> None: ...

    async def get(self, key_id: str) -> ApiKey | None: ...

    async def find_by_hash(self, key_hash: str) -> ApiKey | None: ...

    async def list_all(self) -> list[ApiKey]:
        """Oldest first."""
        ...

    async def set_secret(self, key: ApiKey) -> bool:
        """Write `key`'s hash and prefix unless the record is revoked or gone; True when written."""
        ...

    async def revoke(self, key_id: str, at: datetime) -> bool:
        """True when this call revoked it (False: unknown or already revoked)."""
        ...

    async def touch(self, key_id: str, at: datetime, not_after: datetime) -> None:
        """Set last_used_at to `at` if the recorded use is none or at or before `not_after`
        (one conditional UPDATE: concurrent requests write it once)."""
        ...


class JobChanges(Protocol):
    """Told of every job change that was written, with the job before and after it."""

    async def job_changed(self, before: Job, after: Job) -> None: ...


class WebhookStore(Protocol):
    """Each key's signing secrets, each job's webhook events and their delivery attempts."""

    async def get_secrets(self, owner: str) -> SigningSecrets | None: ...

    async def insert_secrets(self, secrets: SigningSecrets) -> bool:
        """Insert unless the owner has secrets already; True when inserted."""
        ...

    async def replace_secrets(self, secrets: SigningSecrets, expected_secret: str) -> bool:
        """Compare-and-set on the current secret, so two rotations cannot both win."""
        ...

    async def insert_event(self, event: WebhookEvent) -> None: ...

    async def get_event(self, webhook_id: str) -> WebhookEvent | None: ...

    async def save_event(self, event: WebhookEvent, expected: WebhookEvent) -> bool:
        """Write `event` only if the stored one is still `expected` (same series and count
        of attempts): of two deliveries of one message, or a delivery and a redelivery,
        one write lands."""
        ...

    async def job_events(self, job_id: str) -> list[WebhookEvent]:
        """Oldest first."""
        ...

    async def last_event_at(self, job_id: str, event_type: WebhookEventType) -> datetime | None: ...

    async def insert_attempt(self, attempt: Attempt) -> None: ...

    async def job_attempts(self, job_id: str) -> list[Attempt]:
        """Every attempt of every event of the job, by event then attempt number."""
        ...


class WebhookQueue(Protocol):
    """Deliveries run off the queue, never inside the request that caused the event."""

    async def send(self, message: WebhookMessage, delay_seconds: float = 0) -> None: ...


@dataclass(frozen=True)
class PostResult:
    status_code: int | None  # None: no answer (refused, unreachable, timed out)
    error: str | None = None


class WebhookSender(Protocol):
    async def post(
        self, url: str, body: bytes, headers: dict[str, str], timeout_seconds: float
    ) -> PostResult:
        """One POST, redirects not followed; failures come back as a result, not raised."""
        ...


@dataclass(frozen=True)
class PodSpec:
    """What the pool asks RunPod for (RunPod's create-pod body; a template fills the rest)."""

    name: str
    env: dict[str, str]
    template_id: str | None = None
    image_name: str | None = None
    gpu_type_ids: tuple[str, ...] = ()
    gpu_count: int = 1
    network_volume_id: str | None = None
    container_disk_in_gb: int | None = None


@dataclass(frozen=True)
class ProviderPod:
    pod_id: str
    name: str
    desired_status: str  # RunPod's: RUNNING, EXITED or TERMINATED


class PodApiError(Exception):
    """RunPod refused or did not answer; `status_code` None when there was no answer."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class PodProvider(Protocol):
    """RunPod's pods (REST v1); every call raises `PodApiError` on failure."""

    async def create(self, spec: PodSpec) -> ProviderPod: ...

    async def list_pods(self) -> list[ProviderPod]: ...

    async def terminate(self, pod_id: str) -> None:
        """Stop and delete it (a pod with a network volume cannot be merely stopped); a pod
        RunPod no longer knows counts as terminated."""
        ...


@dataclass(frozen=True)
class PoolCounters:
    rate_limited: int = 0
    server_errors: int = 0
    unreachable: int = 0
    refused: int = 0
    pods_started: int = 0
    pods_stopped: int = 0
    unresponsive_stopped: int = 0


@dataclass(frozen=True)
class PoolRecord:
    decided_at: datetime | None
    decision: str | None
    counters: PoolCounters


@dataclass(frozen=True)
class PodUsage:
    """A pod's completed work, summed over the agents seen on it."""

    jobs_done: int = 0
    gpu_seconds: float = 0.0
    video_seconds: float = 0.0  # of the jobs that reported their GPU seconds


class PoolStore(Protocol):
    """The pool controller's state, next to the jobs (D1 / SQLite)."""

    async def acquire_lease(self, holder: str, now: datetime, until: datetime) -> bool:
        """Compare-and-set: take the lease unless another holder's is still running."""
        ...

    async def release_lease(self, holder: str) -> None: ...

    async def pods(self, stopped_since: datetime) -> list[PodActivity]:
        """Every pod not stopped, and those stopped since `stopped_since`, with their
        agents' activity from the jobs table."""
        ...

    async def usage(self, pod_ids: list[str]) -> dict[str, PodUsage]: ...

    async def insert_pod(self, pod_id: str, name: str, now: datetime) -> None: ...

    async def set_drain(self, pod_id: str, at: datetime | None) -> None:
        """Mark it draining at `at`, or (None) take it back into service."""
        ...

    async def mark_stopped(self, pod_id: str, at: datetime, reason: str) -> None: ...

    async def heartbeat(self, pod_id: str | None, agent_id: str, busy: bool, now: datetime) -> bool:
        """Record an agent's heartbeat on its pod; True when that pod must drain (the
        agent is told so, which the pod's record keeps as acknowledged)."""
        ...

    async def backlog(self, rate_since: datetime, unknown_audio_seconds: float) -> Backlog:
        """Pending and running work, and GPU-seconds per video-second measured over the
        jobs completed since `rate_since` (None before any)."""
        ...

    async def record(self) -> PoolRecord: ...

    async def save_decision(self, at: datetime, decision: str, counted: PoolCounters) -> None:
        """Keep the last decision and add `counted` to the counters."""
        ...
