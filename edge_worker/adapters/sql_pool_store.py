"""`SqlPoolStore`: the PoolStore port in SQL, once for D1 and SQLite (like `SqlJobStore`).

The lease is one conditional UPDATE on the single `pool_state` row (created by the first
`INSERT OR IGNORE`): of two sweeps that try at once, only one changes the row. A pod's
activity is read from the jobs of the agents that heartbeated from it (`pool_agents`)."""

from datetime import datetime

from edge_worker.adapters.job_rows import (
    format_optional_time,
    format_time,
    parse_optional_time,
    parse_time,
)
from edge_worker.adapters.sql_job_store import SqlExecutor
from edge_worker.domain.pool import Backlog, PodActivity
from edge_worker.ports import PodUsage, PoolCounters, PoolRecord

COUNTERS = tuple(PoolCounters.__dataclass_fields__)
STATE_ROW_SQL = "INSERT OR IGNORE INTO pool_state (id) VALUES (1)"
ACQUIRE_SQL = (
    "UPDATE pool_state SET lease_holder = ?, lease_until = ? "
    "WHERE id = 1 AND (lease_until IS NULL OR lease_until <= ?)"
)
RELEASE_SQL = (
    "UPDATE pool_state SET lease_holder = NULL, lease_until = NULL "
    "WHERE id = 1 AND lease_holder = ?"
)
RECORD_SQL = f"SELECT decided_at, decision, {', '.join(COUNTERS)} FROM pool_state WHERE id = 1"  # noqa: S608 - constant columns
SAVE_SQL = (
    "UPDATE pool_state SET decided_at = ?, decision = ?, "  # noqa: S608 - constant columns
    + ", ".join(f"{name} = {name} + ?" for name in COUNTERS)
    + " WHERE id = 1"
)
# Each pod with the latest sign of a job of its agents and how many they hold now.
PODS_SQL = (
    "SELECT p.pod_id, p.created_at, p.first_heartbeat_at, p.heartbeat_at, p.busy_at, "
    "p.drain_requested_at, p.drain_acked_at, p.stopped_at, p.stop_reason, "
    "(SELECT MAX(COALESCE(j.completed_at, j.heartbeat_at)) FROM pool_agents a "
    " JOIN jobs j ON j.agent_id = a.agent_id WHERE a.pod_id = p.pod_id) AS job_at, "
    "(SELECT COUNT(*) FROM pool_agents a JOIN jobs j ON j.agent_id = a.agent_id "
    " WHERE a.pod_id = p.pod_id AND j.status = 'processing') AS active_jobs "
    "FROM pool_pods p WHERE p.stopped_at IS NULL OR p.stopped_at >= ? ORDER BY p.created_at"
)
USAGE_SQL = (
    "SELECT a.pod_id, COUNT(*) AS jobs_done, SUM(COALESCE(j.gpu_seconds, 0)) AS gpu_seconds, "
    "SUM(CASE WHEN j.gpu_seconds IS NOT NULL THEN j.video_seconds ELSE 0 END) AS video_seconds "
    "FROM pool_agents a JOIN jobs j ON j.agent_id = a.agent_id "
    "WHERE a.pod_id IN ({marks}) AND j.status IN ('completed', 'expired') GROUP BY a.pod_id"
)
INSERT_POD_SQL = "INSERT OR IGNORE INTO pool_pods (pod_id, name, created_at) VALUES (?, ?, ?)"
SET_DRAIN_SQL = (
    "UPDATE pool_pods SET drain_requested_at = ?, drain_acked_at = NULL "
    "WHERE pod_id = ? AND stopped_at IS NULL"
)
STOP_SQL = (
    "UPDATE pool_pods SET stopped_at = ?, stop_reason = ? WHERE pod_id = ? AND stopped_at IS NULL"
)
SEEN_SQL = (
    "INSERT INTO pool_agents (agent_id, pod_id, seen_at) VALUES (?, ?, ?) "
    "ON CONFLICT (agent_id) DO UPDATE SET pod_id = excluded.pod_id, seen_at = excluded.seen_at"
)
HEARTBEAT_SQL = (
    "UPDATE pool_pods SET heartbeat_at = ?, first_heartbeat_at = COALESCE(first_heartbeat_at, ?), "
    "busy_at = CASE WHEN ? THEN ? ELSE busy_at END, "
    "drain_acked_at = CASE WHEN drain_requested_at IS NOT NULL "
    "THEN COALESCE(drain_acked_at, ?) END "
    "WHERE pod_id = ? AND stopped_at IS NULL"
)
DRAINING_SQL = "SELECT drain_requested_at FROM pool_pods WHERE pod_id = ? AND stopped_at IS NULL"
# Segments cost their own span; a stitch joins videos (no generation); a job its audio.
_AUDIO = (
    "CASE WHEN task = 'segment' THEN segment_end_seconds - segment_start_seconds "
    "WHEN task = 'stitch' THEN 0 ELSE COALESCE(audio_seconds, ?) END"
)
BACKLOG_SQL = (
    "SELECT SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END) AS pending_jobs, "  # noqa: S608
    f"SUM(CASE WHEN status = 'pending' THEN {_AUDIO} ELSE 0 END) AS pending_audio, "
    f"SUM(CASE WHEN status = 'processing' AND agent_id IS NOT NULL "
    f"THEN {_AUDIO} * (100 - progress) / 100.0 ELSE 0 END) AS running_audio "
    "FROM jobs WHERE status IN ('pending', 'processing')"
)
# A client's job carries its children's GPU seconds, so only `job` rows are summed.
RATE_SQL = (
    "SELECT SUM(gpu_seconds) AS gpu, SUM(video_seconds) AS video FROM jobs "
    "WHERE status IN ('completed', 'expired') AND created_at >= ? AND task = 'job' "
    "AND gpu_seconds IS NOT NULL AND video_seconds > 0"
)


class SqlPoolStore:
    def __init__(self, db: SqlExecutor) -> None:
        self._db = db

    async def acquire_lease(self, holder: str, now: datetime, until: datetime) -> bool:
        await self._db.execute(STATE_ROW_SQL, ())
        params = (holder, format_time(until), format_time(now))
        return await self._db.execute(ACQUIRE_SQL, params) == 1

    async def release_lease(self, holder: str) -> None:
        await self._db.execute(RELEASE_SQL, (holder,))

    async def pods(self, stopped_since: datetime) -> list[PodActivity]:
        found = await self._db.rows(PODS_SQL, (format_time(stopped_since),))
        pods = []
        for row in found:
            marks = [parse_time(row[at]) for at in ("busy_at", "job_at") if row[at] is not None]
            pods.append(
                PodActivity(
                    pod_id=row["pod_id"],
                    created_at=parse_time(row["created_at"]),
                    first_heartbeat_at=parse_optional_time(row["first_heartbeat_at"]),
                    heartbeat_at=parse_optional_time(row["heartbeat_at"]),
                    busy_at=max(marks) if marks else None,
                    active_jobs=int(row["active_jobs"] or 0),
                    drain_requested_at=parse_optional_time(row["drain_requested_at"]),
                    drain_acked_at=parse_optional_time(row["drain_acked_at"]),
                    stopped_at=parse_optional_time(row["stopped_at"]),
                    stop_reason=row["stop_reason"],
                )
            )
        return pods

    async def usage(self, pod_ids: list[str]) -> dict[str, PodUsage]:
        if not pod_ids:
            return {}
        sql = USAGE_SQL.format(marks=", ".join("?" for _ in pod_ids))
        return {
            row["pod_id"]: PodUsage(
                jobs_done=int(row["jobs_done"]),
                gpu_seconds=float(row["gpu_seconds"] or 0),
                video_seconds=float(row["video_seconds"] or 0),
            )
            for row in await self._db.rows(sql, tuple(pod_ids))
        }

    async def insert_pod(self, pod_id: str, name: str, now: datetime) -> None:
        await self._db.execute(INSERT_POD_SQL, (pod_id, name, format_time(now)))

    async def set_drain(self, pod_id: str, at: datetime | None) -> None:
        await self._db.execute(SET_DRAIN_SQL, (format_optional_time(at), pod_id))

    async def mark_stopped(self, pod_id: str, at: datetime, reason: str) -> None:
        await self._db.execute(STOP_SQL, (format_time(at), reason, pod_id))

    async def heartbeat(self, pod_id: str | None, agent_id: str, busy: bool, now: datetime) -> bool:
        if pod_id is None:
            return False
        at = format_time(now)
        await self._db.execute(SEEN_SQL, (agent_id, pod_id, at))
        await self._db.execute(HEARTBEAT_SQL, (at, at, int(busy), at, at, pod_id))
        found = await self._db.first(DRAINING_SQL, (pod_id,))
        return found is not None and found["drain_requested_at"] is not None

    async def backlog(self, rate_since: datetime, unknown_audio_seconds: float) -> Backlog:
        unknown = unknown_audio_seconds
        work = await self._db.first(BACKLOG_SQL, (unknown, unknown))
        rate = await self._db.first(RATE_SQL, (format_time(rate_since),))
        gpu, video = (rate["gpu"], rate["video"]) if rate else (None, None)
        work = work or {}
        return Backlog(
            pending_jobs=int(work.get("pending_jobs") or 0),
            pending_audio_seconds=float(work.get("pending_audio") or 0),
            running_audio_seconds=float(work.get("running_audio") or 0),
            measured_gpu_seconds_per_video_second=gpu / video if gpu and video else None,
        )

    async def record(self) -> PoolRecord:
        found = await self._db.first(RECORD_SQL, ())
        if found is None:
            return PoolRecord(None, None, PoolCounters())
        return PoolRecord(
            decided_at=parse_optional_time(found["decided_at"]),
            decision=found["decision"],
            counters=PoolCounters(**{name: int(found[name]) for name in COUNTERS}),
        )

    async def save_decision(self, at: datetime, decision: str, counted: PoolCounters) -> None:
        await self._db.execute(STATE_ROW_SQL, ())
        params = (format_time(at), decision, *(getattr(counted, name) for name in COUNTERS))
        await self._db.execute(SAVE_SQL, params)
