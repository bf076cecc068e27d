"""A parallel job's AAC track, encoded by its planner beside the agent's next task.

The stitch needs the whole audio as the output's AAC track, and encoding it costs seconds
per ten minutes of speech: on the stitch that is the critical path, since every segment
waits for it. So the planner, once the edge has queued the segments, encodes the track in
a background thread and uploads it to the slot the plan's reply granted, while the agent
goes on to pull its next task (a GPU task leaves the CPU idle). Nothing depends on it: a
track that never arrives (agent stopped, upload failed) only means the stitch encodes the
audio itself.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from gpu_agent.job_log import JobLog
from gpu_agent.retry import TRANSFER_RETRY, RetryPolicy
from gpu_agent.transfers import TransferError, upload
from infinitetalk.engine import InvalidInputError

TRACK_CONTENT_TYPE = "audio/mp4"
Encoder = Callable[[Path, Path, float], Path]
"""`encode_aac(source, destination, max_seconds)` (`infinitetalk.media.audio_pass`)."""


class AudioTracks:
    """Background encodes and uploads, one thread each; `wait` joins them (tests, shutdown)."""

    def __init__(
        self,
        transfers: httpx.Client,
        *,
        encoder: Encoder | None = None,
        retry: RetryPolicy = TRANSFER_RETRY,
    ) -> None:
        self._transfers = transfers
        self._encoder = encoder
        self._retry = retry
        self._threads: list[threading.Thread] = []

    def start(
        self, source: Path, upload_url: str, max_seconds: float, log: JobLog, scratch: Path
    ) -> None:
        """Take `source` (moved into its own directory under `scratch`'s parent, as the
        run's scratch is deleted when the run ends) and encode and upload it."""
        directory = Path(tempfile.mkdtemp(prefix="track-", dir=scratch.parent))
        owned = source.rename(directory / source.name)
        thread = threading.Thread(
            target=self._run,
            args=(owned, upload_url, max_seconds, log),
            name="audio-track",
            daemon=True,  # a stopping agent does not wait: the stitch can encode it
        )
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def wait(self, timeout: float | None = None) -> None:
        for thread in self._threads:
            thread.join(timeout)

    def _run(self, source: Path, upload_url: str, max_seconds: float, log: JobLog) -> None:
        started = time.monotonic()
        try:
            track = self._encode(source, source.with_name("track.m4a"), max_seconds)
            encoded = time.monotonic()
            self._retry.call(
                lambda: upload(self._transfers, upload_url, track, TRACK_CONTENT_TYPE),
                what="upload the audio track",
            )
            log.info(
                "audio track uploaded",
                extra={
                    "encoding_seconds": round(encoded - started, 3),
                    "size_bytes": track.stat().st_size,
                },
            )
        except (InvalidInputError, TransferError, OSError) as exc:
            log.warning(
                "audio track not uploaded; the stitch will encode it", extra={"error": str(exc)}
            )
        finally:
            shutil.rmtree(source.parent, ignore_errors=True)

    def _encode(self, source: Path, destination: Path, max_seconds: float) -> Path:
        if self._encoder is not None:
            return self._encoder(source, destination, max_seconds)
        from infinitetalk.media.audio_pass import encode_aac

        return encode_aac(source, destination, max_seconds)
