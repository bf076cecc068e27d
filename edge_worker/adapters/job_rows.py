"""Mapping between `Job` and the `jobs` table row; shared by every SQL store (SQLite, D1)."""

import base64
import binascii
import json
import re
from datetime import UTC, date, datetime
from typing import Any

from contracts import (
    FailureCode,
    JobStatus,
    Quality,
    Resolution,
    ResultMetadata,
    SpeakerAssignment,
    SpeakerMode,
    Stage,
)
from contracts.jobs import Box, Parallel
from contracts.webhooks import WebhookEventType
from edge_worker.domain.idempotency import IdempotencyRecord
from edge_worker.domain.jobs import Job, JobTask, SegmentPlan
from edge_worker.domain.usage import UsageRow
from edge_worker.ports import SweepKind

COLUMNS = (
    "id",
    "owner",
    "status",
    "stage",
    "progress",
    "prompt",
    "resolution",
    "seed",
    "image_key",
    "audio_key",
    "created_at",
    "updated_at",
    "started_at",
    "completed_at",
    "expires_at",
    "heartbeat_at",
    "attempts",
    "error_code",
    "error_message",
    "claim_token",
    "agent_id",
    "eta_seconds",
    "result_key",
    "result_json",
    "enqueued_at",
    "inputs_deleted",
    "quality",
    "image_etag",
    "audio_etag",
    "audio_seconds",
    "video_seconds",
    "gpu_seconds",
    "engine",
    "parallel",
    "parent_id",
    "task",
    "segment_index",
    "segment_count",
    "segment_start_seconds",
    "segment_end_seconds",
    "segment_plan",
    "webhook_url",
    "webhook_events",
    "video_key",
    "video_etag",
    "audio2_key",
    "audio2_etag",
    "speaker_mode",
    "speaker_boxes",
    "speakers_json",
    "refusals",
    "version",
)
_TIMES = (
    "created_at",
    "updated_at",
    "started_at",
    "completed_at",
    "expires_at",
    "heartbeat_at",
    "enqueued_at",
)

# The SQL below is built from the constant column lists above, never from input: every
# value travels as a `?` parameter.
INSERT_SQL = f"INSERT INTO jobs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"  # noqa: S608
# A split job's child: at most one per (parent, task, index), whoever inserts it first.
INSERT_CHILD_SQL = INSERT_SQL.replace("INSERT INTO", "INSERT OR IGNORE INTO", 1)
REPLACE_SQL = (
    f"UPDATE jobs SET {', '.join(f'{c} = ?' for c in COLUMNS if c != 'id')} "  # noqa: S608
    "WHERE id = ? AND version = ?"
)
SELECT_SQL = f"SELECT {', '.join(COLUMNS)} FROM jobs"  # noqa: S608 - constant columns
GET_SQL = f"{SELECT_SQL} WHERE id = ?"
CHILDREN_SQL = f"{SELECT_SQL} WHERE parent_id = ? ORDER BY task, segment_index"
# Distinct agents whose heartbeat (a claim counts) is at or after a time.
AGENTS_SEEN_SQL = (
    "SELECT COUNT(DISTINCT agent_id) AS agents FROM jobs "
    "WHERE heartbeat_at >= ? AND agent_id IS NOT NULL"
)
# The queue is FIFO by enqueue time. Two counts rather than one with an OR: the first is a
# range of the (status, enqueued_at) index that never reads the table; the ties of the
# second are rare. Without the split the planner walks every pending job's row.
COUNT_QUEUED_BEFORE_SQL = (
    "SELECT (SELECT COUNT(*) FROM jobs WHERE status = 'pending' AND enqueued_at < ?) "
    "+ (SELECT COUNT(*) FROM jobs WHERE status = 'pending' AND enqueued_at = ? AND id < ?) "
    "AS ahead"
)
# For a held job (pending, not enqueued): every queued job, and its owner's held jobs
# created before it; parameters: owner, created_at, owner, created_at, id.
COUNT_BEFORE_HELD_SQL = (
    "SELECT (SELECT COUNT(*) FROM jobs WHERE status = 'pending' AND enqueued_at IS NOT NULL) "
    "AS queued, (SELECT COUNT(*) FROM jobs WHERE owner = ? AND status = 'pending' "
    "AND enqueued_at IS NULL AND created_at < ?) + (SELECT COUNT(*) FROM jobs WHERE owner = ? "
    "AND status = 'pending' AND enqueued_at IS NULL AND created_at = ? AND id < ?) AS own_held"
)
HELD_PER_OWNER_SQL = (
    "SELECT owner, COUNT(*) AS held FROM jobs "
    "WHERE status = 'pending' AND enqueued_at IS NULL GROUP BY owner"
)
HELD_JOBS_SQL = (
    f"{SELECT_SQL} WHERE owner = ? AND status = 'pending' AND enqueued_at IS NULL "
    "ORDER BY created_at, id LIMIT ?"
)
OWNERS_WITH_HELD_SQL = (
    "SELECT DISTINCT owner FROM jobs WHERE status = 'pending' AND enqueued_at IS NULL LIMIT ?"
)
# An owner's unfinished jobs, those of them queued, and the video seconds of the jobs it
# completed since a time (from the result's metadata); parameters: owner x3, the time.
# A split job's children are part of it, never counted apart.
OWNER_LOAD_SQL = (
    "SELECT (SELECT COUNT(*) FROM jobs WHERE owner = ? AND status IN ('pending', 'processing') "
    "AND task = 'job') AS active, (SELECT COUNT(*) FROM jobs WHERE owner = ? "
    "AND status = 'pending' AND enqueued_at IS NOT NULL AND task = 'job') AS queued, "
    "(SELECT TOTAL(video_seconds) FROM jobs "
    "WHERE owner = ? AND status IN ('completed', 'expired') AND completed_at >= ? "
    "AND task = 'job') AS video_seconds"
)


def format_time(value: datetime) -> str:
    """Fixed-width UTC text, so that string order is time order in SQL."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_TIME_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")


def parse_time(value: str) -> datetime:
    """`format_time`'s text back, and nothing else (cursors carry it too). Checked, then read
    by `fromisoformat`: `strptime` would import `_strptime` during the Worker's requests."""
    if not _TIME_TEXT.fullmatch(value):
        raise ValueError(f"not a stored time: {value!r}")
    return datetime.fromisoformat(value)


def format_optional_time(value: datetime | None) -> str | None:
    return None if value is None else format_time(value)


def parse_optional_time(value: str | None) -> datetime | None:
    return None if value is None else parse_time(value)


def to_row(job: Job) -> tuple[Any, ...]:
    values: dict[str, Any] = {
        "id": job.id,
        "owner": job.owner,
        "status": job.status.value,
        "stage": job.stage.value,
        "progress": job.progress,
        "prompt": job.prompt,
        "resolution": job.resolution.value,
        "seed": job.seed,
        "image_key": job.image_key,
        "audio_key": job.audio_key,
        "attempts": job.attempts,
        "error_code": job.error_code.value if job.error_code else None,
        "error_message": job.error_message,
        "claim_token": job.claim_token,
        "agent_id": job.agent_id,
        "eta_seconds": job.eta_seconds,
        "result_key": job.result_key,
        "result_json": job.result.model_dump_json() if job.result else None,
        "inputs_deleted": int(job.inputs_deleted),
        "quality": job.quality.value,
        "image_etag": job.image_etag,
        "audio_etag": job.audio_etag,
        # Metering: video and GPU seconds and the engine are copies of the result's, in
        # columns so that usage is one GROUP BY (`usage_sql`).
        "audio_seconds": job.audio_seconds,
        "video_seconds": job.video_seconds,
        "gpu_seconds": job.gpu_seconds,
        "engine": job.engine,
        "parallel": str(job.parallel),
        "parent_id": job.parent_id,
        "task": job.task,
        "segment_index": job.segment_index,
        "segment_count": job.segment_count,
        "segment_start_seconds": job.segment_start_seconds,
        "segment_end_seconds": job.segment_end_seconds,
        "segment_plan": _plan_json(job.plan),
        "webhook_url": job.webhook_url,
        "webhook_events": ",".join(sorted(job.webhook_events)) or None,
        "video_key": job.video_key,
        "video_etag": job.video_etag,
        "audio2_key": job.audio2_key,
        "audio2_etag": job.audio2_etag,
        "speaker_mode": job.speaker_mode.value if job.speaker_mode else None,
        "speaker_boxes": json.dumps(job.speaker_boxes) if job.speaker_boxes else None,
        "speakers_json": job.speakers.model_dump_json() if job.speakers else None,
        "refusals": job.refusals,
        "version": job.version,
    }
    for name in _TIMES:
        values[name] = format_optional_time(getattr(job, name))
    return tuple(values[c] for c in COLUMNS)


def replace_params(job: Job, expected_version: int) -> tuple[Any, ...]:
    row = dict(zip(COLUMNS, to_row(job), strict=True))
    return (*(row[c] for c in COLUMNS if c != "id"), job.id, expected_version)


def from_row(row: dict[str, Any]) -> Job:
    times = {name: parse_optional_time(row[name]) for name in _TIMES}
    return Job(
        id=row["id"],
        owner=row["owner"],
        status=JobStatus(row["status"]),
        stage=Stage(row["stage"]),
        progress=float(row["progress"]),
        prompt=row["prompt"],
        resolution=Resolution(row["resolution"]),
        seed=row["seed"],
        image_key=row["image_key"],
        audio_key=row["audio_key"],
        created_at=parse_time(row["created_at"]),
        updated_at=parse_time(row["updated_at"]),
        started_at=times["started_at"],
        completed_at=times["completed_at"],
        expires_at=times["expires_at"],
        heartbeat_at=times["heartbeat_at"],
        attempts=int(row["attempts"]),
        error_code=FailureCode(row["error_code"]) if row["error_code"] else None,
        error_message=row["error_message"],
        claim_token=row["claim_token"],
        agent_id=row["agent_id"],
        eta_seconds=row["eta_seconds"],
        result_key=row["result_key"],
        result=ResultMetadata.model_validate_json(row["result_json"])
        if row["result_json"]
        else None,
        enqueued_at=times["enqueued_at"],
        inputs_deleted=bool(row["inputs_deleted"]),
        image_etag=row["image_etag"],
        audio_etag=row["audio_etag"],
        audio_seconds=row["audio_seconds"],
        quality=Quality(row["quality"]),
        parallel=_parallel(row["parallel"]),
        parent_id=row["parent_id"],
        task=_TASKS[row["task"]],
        segment_index=row["segment_index"],
        segment_count=row["segment_count"],
        segment_start_seconds=row["segment_start_seconds"],
        segment_end_seconds=row["segment_end_seconds"],
        plan=_plan(row["segment_plan"]),
        webhook_url=row["webhook_url"],
        webhook_events=frozenset(
            WebhookEventType(name) for name in (row["webhook_events"] or "").split(",") if name
        ),
        video_key=row["video_key"],
        video_etag=row["video_etag"],
        audio2_key=row["audio2_key"],
        audio2_etag=row["audio2_etag"],
        speaker_mode=SpeakerMode(row["speaker_mode"]) if row["speaker_mode"] else None,
        speaker_boxes=_boxes(row["speaker_boxes"]),
        speakers=SpeakerAssignment.model_validate_json(row["speakers_json"])
        if row["speakers_json"]
        else None,
        refusals=int(row["refusals"]),
        version=int(row["version"]),
    )


_TASKS: dict[str, JobTask] = {"job": "job", "segment": "segment", "stitch": "stitch"}


def _parallel(value: str) -> Parallel:
    if value in ("off", "auto"):
        return "auto" if value == "auto" else "off"
    return int(value)


def _plan_json(plan: SegmentPlan | None) -> str | None:
    if plan is None:
        return None
    body = {"attempt": plan.attempt, "audio_seconds": plan.audio_seconds, "bounds": plan.bounds}
    return json.dumps(body, separators=(",", ":"))


def _plan(text: str | None) -> SegmentPlan | None:
    if text is None:
        return None
    body = json.loads(text)
    return SegmentPlan(
        attempt=int(body["attempt"]),
        audio_seconds=float(body["audio_seconds"]),
        bounds=tuple((float(start), float(end)) for start, end in body["bounds"]),
    )


def _boxes(text: str | None) -> tuple[Box, Box] | None:
    if not text:
        return None
    first, second = ((int(x1), int(y1), int(x2), int(y2)) for x1, y1, x2, y2 in json.loads(text))
    return first, second


def encode_cursor(job: Job) -> str:
    """Opaque keyset cursor: the last job's (created_at, id)."""
    return base64.urlsafe_b64encode(f"{format_time(job.created_at)}|{job.id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[str, str]:
    """Raises ValueError for anything that is not a cursor this module made."""
    try:
        created, _, job_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError("malformed cursor") from None
    parse_time(created)
    return created, job_id


def list_for_owner_sql(*, statuses: int, after_cursor: bool) -> str:
    """A page of one owner's jobs, newest first; parameters: owner, `statuses` status values,
    the cursor's (created_at, created_at, id) when `after_cursor`, then the row limit."""
    where = ["owner = ?", "task = 'job'"]
    if statuses:
        where.append(f"status IN ({', '.join('?' for _ in range(statuses))})")
    if after_cursor:
        where.append("(created_at < ? OR (created_at = ? AND id < ?))")
    return f"{SELECT_SQL} WHERE {' AND '.join(where)} ORDER BY created_at DESC, id DESC LIMIT ?"


# A split job has no agent (no claim token), so it is never lost; its children's files live
# under its prefix, so only the parent expires and has its inputs deleted.
SWEEP_SQL = {
    SweepKind.LOST: f"{SELECT_SQL} WHERE status = 'processing' AND heartbeat_at < ? "
    "AND claim_token IS NOT NULL ORDER BY heartbeat_at LIMIT ?",
    SweepKind.EXPIRED: f"{SELECT_SQL} WHERE status = 'completed' AND expires_at <= ? "
    "AND task = 'job' ORDER BY expires_at LIMIT ?",
    SweepKind.INPUTS_LEFT: f"{SELECT_SQL} WHERE inputs_deleted = 0 AND updated_at <= ? "
    "AND status IN ('completed', 'failed', 'cancelled', 'expired') AND task = 'job' "
    "ORDER BY updated_at LIMIT ?",
    SweepKind.SPLIT: f"{SELECT_SQL} WHERE status = 'processing' AND updated_at < ? "
    "AND claim_token IS NULL AND segment_count IS NOT NULL ORDER BY updated_at LIMIT ?",
    SweepKind.STRANDED: f"{SELECT_SQL} WHERE status = 'pending' AND enqueued_at < ? "
    "ORDER BY enqueued_at LIMIT ?",
}

# The D1 limit on bound parameters is 100 per query: four lists of this many keys fit.
KEYS_PER_QUERY = 25
INPUT_KEY_COLUMNS = ("image_key", "audio_key", "video_key", "audio2_key")


def keys_in_use_sql(count: int) -> str:
    """The input keys, among `count` given once per input column, of jobs whose inputs are
    kept."""
    marks = ", ".join("?" for _ in range(count))
    where = " OR ".join(f"{column} IN ({marks})" for column in INPUT_KEY_COLUMNS)
    columns = ", ".join(INPUT_KEY_COLUMNS)
    return f"SELECT {columns} FROM jobs WHERE inputs_deleted = 0 AND ({where})"  # noqa: S608 - "?" marks only


# Days are the first 10 characters of the fixed-width UTC `created_at`. Expired jobs count
# as completed: they were, then their video aged out.
_USAGE_SELECT = (
    "SELECT owner, substr(created_at, 1, 10) AS day, quality, COUNT(*) AS jobs_created, "
    "SUM(CASE WHEN status IN ('completed', 'expired') THEN 1 ELSE 0 END) AS jobs_completed, "
    "SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS jobs_failed, "
    "TOTAL(audio_seconds) AS audio_seconds, TOTAL(video_seconds) AS video_seconds, "
    "TOTAL(gpu_seconds) AS gpu_seconds FROM jobs WHERE task = 'job' AND "
)
_USAGE_GROUP = " GROUP BY owner, day, quality ORDER BY owner, day, quality"


def usage_sql(*, one_owner: bool) -> str:
    """Daily buckets in one GROUP BY; parameters: the owner when `one_owner`, then the
    period's start and end. One owner's is a range of the (owner, created_at) index; every
    owner's, of the created_at index."""
    where = "owner = ? AND " if one_owner else ""
    return f"{_USAGE_SELECT}{where}created_at >= ? AND created_at < ?{_USAGE_GROUP}"


def usage_from_row(row: dict[str, Any]) -> UsageRow:
    return UsageRow(
        owner=row["owner"],
        day=date.fromisoformat(row["day"]),
        quality=Quality(row["quality"]),
        jobs_created=int(row["jobs_created"]),
        jobs_completed=int(row["jobs_completed"]),
        jobs_failed=int(row["jobs_failed"]),
        audio_seconds=float(row["audio_seconds"]),
        video_seconds=float(row["video_seconds"]),
        gpu_seconds=float(row["gpu_seconds"]),
    )


IDEMPOTENCY_COLUMNS = (
    "owner",
    "idempotency_key",
    "fingerprint",
    "job_id",
    "created_at",
    "expires_at",
)
IDEMPOTENCY_GET_SQL = (
    f"SELECT {', '.join(IDEMPOTENCY_COLUMNS)} FROM idempotency_keys "  # noqa: S608 - constant columns
    "WHERE owner = ? AND idempotency_key = ?"
)
IDEMPOTENCY_INSERT_SQL = (
    f"INSERT OR IGNORE INTO idempotency_keys ({', '.join(IDEMPOTENCY_COLUMNS)}) "  # noqa: S608
    "VALUES (?, ?, ?, ?, ?, ?)"
)
IDEMPOTENCY_FINISH_SQL = (
    "UPDATE idempotency_keys SET job_id = ? WHERE owner = ? AND idempotency_key = ? "
    "AND fingerprint = ? AND job_id IS NULL"
)
IDEMPOTENCY_DELETE_SQL = (
    "DELETE FROM idempotency_keys WHERE owner = ? AND idempotency_key = ? AND created_at = ?"
)
IDEMPOTENCY_PURGE_SQL = "DELETE FROM idempotency_keys WHERE expires_at <= ?"


def idempotency_to_row(record: IdempotencyRecord) -> tuple[Any, ...]:
    return (
        record.owner,
        record.key,
        record.fingerprint,
        record.job_id,
        format_time(record.created_at),
        format_time(record.expires_at),
    )


def idempotency_from_row(row: dict[str, Any]) -> IdempotencyRecord:
    return IdempotencyRecord(
        owner=row["owner"],
        key=row["idempotency_key"],
        fingerprint=row["fingerprint"],
        job_id=row["job_id"],
        created_at=parse_time(row["created_at"]),
        expires_at=parse_time(row["expires_at"]),
    )
