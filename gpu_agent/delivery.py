"""One queue message: decode it, claim its job, ack or hand it back, run the claimed job.

The message's lease only matters until the claim: once the edge has given this agent
the job, the claim is the lease (docs/ARCHITECTURE.md, agent flow), so the message is
acked at once and its visibility never needs extending. Whatever happens, `handle`
returns an `Outcome` and never raises for a job-level problem. `interrupt` (the
agent's shutdown grace ran out) stops the job in progress and makes later messages
go back to the queue unclaimed.
"""

from __future__ import annotations

import logging
import threading

from contracts import Capability, ErrorCode, PulledMessage, QueueMessage
from gpu_agent.claimed_job import ClaimedJob, ClaimedJobFactory
from gpu_agent.edge_client import ClaimConflict, EdgeClient, EdgeError, JobGone
from gpu_agent.job_log import JobLog
from gpu_agent.outcome import Outcome
from gpu_agent.queue_client import CloudflareQueueClient, QueueError

log = logging.getLogger(__name__)

CLAIM_RETRY_DELAY_SECONDS = 10


class MessageDelivery:
    """Handles one pulled message at a time; owns nothing that outlives the message."""

    def __init__(
        self,
        *,
        queue: CloudflareQueueClient,
        edge: EdgeClient,
        jobs: ClaimedJobFactory,
        agent_id: str,
        claim_retry_delay_seconds: int = CLAIM_RETRY_DELAY_SECONDS,
        capabilities: frozenset[Capability] = frozenset({Capability.IMAGE}),
    ) -> None:
        self._queue = queue
        self._edge = edge
        self._jobs = jobs
        self._agent_id = agent_id
        self._claim_retry_delay = claim_retry_delay_seconds
        self._capabilities = capabilities
        self._lock = threading.Lock()
        self._interrupted = False
        self._current: ClaimedJob | None = None

    def interrupt(self) -> None:
        """Stop the job in progress, and any later one, for a shutdown (any thread may call).

        The job is handed back to the edge with a retryable `/fail`, so it is requeued
        at once instead of after the heartbeat timeout; a finished upload still completes.
        """
        with self._lock:
            self._interrupted = True
            current = self._current
        if current is not None:
            current.stop()

    def handle(self, message: PulledMessage) -> Outcome:
        """Handle one message; returns how it ended and never raises for job problems."""
        mlog = JobLog(log, {"message_id": message.id, "delivery_attempts": message.attempts})
        try:
            queued = QueueMessage.decode_pulled(message)
            if queued.v != 1:
                raise ValueError(f"unsupported message version {queued.v}")
        except ValueError as exc:
            mlog.error("poison message acked", extra={"error": f"{type(exc).__name__}: {exc}"})
            self._ack(message, mlog)
            return Outcome.SKIPPED

        jlog = mlog.with_fields(job_id=queued.job_id)
        with self._lock:
            interrupted = self._interrupted
        if interrupted:
            jlog.info("shutting down, message handed back unclaimed")
            self._hand_back(message, jlog, 0)
            return Outcome.REQUEUED
        try:
            claim = self._edge.claim(
                queued.job_id,
                agent_id=self._agent_id,
                lease_id=message.lease_id,
                capabilities=self._capabilities,
            )
        except (ClaimConflict, JobGone) as exc:
            jlog.info("job not claimable, message acked", extra={"reason": str(exc)})
            self._ack(message, jlog)
            return Outcome.SKIPPED
        except EdgeError as exc:
            if exc.code == ErrorCode.MISSING_CAPABILITY.value:
                jlog.info("job needs what this agent lacks, handed back for a capable one")
            else:
                jlog.warning("claim failed, message handed back", extra={"error": str(exc)})
            self._hand_back(message, jlog, self._claim_retry_delay)
            return Outcome.REQUEUED

        jlog = jlog.with_fields(attempt=claim.attempt)
        jlog.info("job claimed")
        self._ack(message, jlog)  # from here the claim is the lease
        return self._run(self._jobs.start(claim, jlog))

    def release(self, message: PulledMessage) -> None:
        """Hand back a message this agent will not handle (stopping, or an extra one)."""
        try:
            self._queue.retry(message.lease_id, 0)
        except QueueError as exc:
            log.warning("could not release a message", extra={"error": str(exc)})

    def _run(self, job: ClaimedJob) -> Outcome:
        with self._lock:
            self._current = job
            if self._interrupted:
                job.stop()
        try:
            return job.run()
        finally:
            with self._lock:
                self._current = None

    def _ack(self, message: PulledMessage, mlog: JobLog) -> None:
        try:
            self._queue.ack([message.lease_id])
        except QueueError as exc:
            # Redelivery after the visibility timeout is harmless: the claim is the lease.
            mlog.warning("ack failed", extra={"error": str(exc)})

    def _hand_back(self, message: PulledMessage, mlog: JobLog, delay_seconds: int) -> None:
        try:
            self._queue.retry(message.lease_id, delay_seconds)
        except QueueError as exc:
            mlog.warning(
                "retry failed; the visibility timeout will redeliver", extra={"error": str(exc)}
            )
