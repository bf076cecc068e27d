"""The work of one claimed task: for a job (or one segment of a parallel job) download the
inputs, probe them, run the engine, verify its video and upload it. The audio is decoded
once, by its probe, which hands the engine what it needs from the samples. A parallel
job's plan task cuts the audio at silences and hands the segments to the edge; its
stitch task joins the segments' videos and checks every seam (`infinitetalk.media`).

A step that fails raises `JobFailed` with what the edge should hear; a cancel (seen
between steps, inside transfers and by the engine) ends the run with None. Downloads
and uploads retry here, each try starting over.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

import httpx

from contracts import (
    BoxSource,
    ClaimResponse,
    FailureCode,
    ResultMetadata,
    SegmentCommitRequest,
    SegmentPlanItem,
    SegmentPlanRequest,
    SpeakerAssignment,
    SpeakerMode,
    Stage,
    StitchTask,
)
from contracts.media import (
    MAX_AUDIO_BYTES,
    MAX_AUDIO_SECONDS,
    MAX_IMAGE_BYTES,
    MAX_IMAGE_PIXELS,
    MAX_VIDEO_BYTES,
    MAX_VIDEO_SECONDS,
    SNIFF_BYTES,
    sniff,
)
from gpu_agent.audio_track import AudioTracks
from gpu_agent.edge_client import ClaimConflict, EdgeClient, EdgeError, JobGone
from gpu_agent.job_log import JobLog
from gpu_agent.probes import MediaProbes
from gpu_agent.progress import CancelSignal, ProgressMapper, Snapshot
from gpu_agent.retry import TRANSFER_RETRY, RetryPolicy
from gpu_agent.transfers import (
    InputChanged,
    PayloadTooLarge,
    TransferCancelled,
    TransferError,
    download,
    upload,
)
from infinitetalk.engine import (
    CancelledError,
    Engine,
    EngineError,
    InvalidInputError,
    PreparedAudio,
    SpeakerTracks,
    VideoRequest,
    VideoResult,
    require_quality,
)

T = TypeVar("T")

IMAGE_SHARE = 0.2  # of the download phase; the audio is usually the bigger file
MAX_SEGMENT_VIDEO_BYTES = 64 * 1024**3
"""A stitch downloads the segments the agents made: no public limit applies, only a sane one."""
PREPARED_AUDIO_DIR = "prepared"
"""Where the audio's one pass writes what the engine needs from it."""
FIRST_FRAME = "first_frame.png"
"""A dubbed video's first frame: the still that sizes the output and seeds detection."""


@dataclass(frozen=True)
class _Inputs:
    """What a job's downloads became: the picture (an image, or a video to dub) and its
    one or two speech tracks."""

    picture: Path
    audio: Path
    audio2: Path | None
    is_video: bool


@dataclass(frozen=True)
class _Prepared:
    """The probed inputs: the still that stands for the picture (a video's first frame)
    and the speech the engine gets (two speakers' mix and tracks)."""

    image: Path
    audio_path: Path
    audio: PreparedAudio
    speakers: SpeakerTracks | None


@dataclass(frozen=True)
class JobFailure:
    """What `/fail` tells the edge about a job that cannot finish here."""

    code: FailureCode
    message: str
    retryable: bool

    def without_paths(self, directory: Path) -> JobFailure:
        """The client sees the message: the agent's own paths are cut out of it."""
        return replace(self, message=self.message.replace(f"{directory}{os.sep}", ""))


class JobFailed(Exception):
    """A step failed in a way to report with `/fail`."""

    def __init__(self, code: FailureCode, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.failure = JobFailure(code, message, retryable)


@dataclass(frozen=True)
class SegmentsQueued:
    """A plan ended well: the edge queued `count` segments and owns the job again."""

    count: int


class _Stopped(Exception):
    """The job was cancelled between steps or inside the engine."""


@dataclass(frozen=True)
class PipelineLimits:
    """Input caps (the public limits, docs/API.md) and how transfers retry."""

    max_image_bytes: int = MAX_IMAGE_BYTES
    max_audio_bytes: int = MAX_AUDIO_BYTES
    max_image_pixels: int = MAX_IMAGE_PIXELS
    max_audio_seconds: float = MAX_AUDIO_SECONDS
    transfer_retry: RetryPolicy = TRANSFER_RETRY
    max_video_bytes: int = MAX_VIDEO_BYTES
    max_video_seconds: float = MAX_VIDEO_SECONDS


@dataclass(frozen=True)
class _Run:
    """One job's way through the pipeline."""

    claim: ClaimResponse
    workdir: Path
    cancel: CancelSignal
    report: Callable[[Snapshot], None]
    log: JobLog
    progress: ProgressMapper = field(default_factory=ProgressMapper)


class Pipeline:
    """Turns a claim into an uploaded video; nothing outlives one run but a planner's
    audio track encode (`tracks`), which finishes on its own.

    Without explicit `probes` the real ones (PyAV/Pillow) are imported at the first
    job, so importing the agent stays cheap.
    """

    def __init__(
        self,
        *,
        edge: EdgeClient,
        transfers: httpx.Client,
        engine: Engine,
        probes: MediaProbes | None = None,
        limits: PipelineLimits | None = None,
        tracks: AudioTracks | None = None,
    ) -> None:
        self._edge = edge
        self._transfers = transfers
        self._engine = engine
        self._probes = probes
        self._limits = limits or PipelineLimits()
        self.tracks = tracks or AudioTracks(transfers, retry=self._limits.transfer_retry)

    def run(
        self,
        claim: ClaimResponse,
        workdir: Path,
        cancel: CancelSignal,
        report: Callable[[Snapshot], None],
        log: JobLog,
    ) -> ResultMetadata | SegmentsQueued | None:
        """The uploaded video's metadata (a job, a segment or a stitch), `SegmentsQueued`
        for a plan, or None when the task was cancelled on the way."""
        run = _Run(claim, workdir, cancel, report, log)
        try:
            if claim.task == "plan":
                return self._plan(run)
            if claim.task == "stitch":
                return self._stitch(run)
            return self._job(run)
        except (_Stopped, TransferCancelled):
            return None

    def _job(self, run: _Run) -> ResultMetadata:
        """A whole job or one segment of one: the engine makes the video."""
        self._check_quality(run)
        probes = self._probes_or_default()
        inputs = self._download_inputs(run)
        prepared = self._probe_inputs(probes, run, inputs)
        _stop_if_cancelled(run.cancel)
        started = time.monotonic()
        video = self._generate(run, inputs, prepared)
        gpu_seconds = time.monotonic() - started
        _stop_if_cancelled(run.cancel)  # a video finished after a cancel is not uploaded
        metadata = self._verify(video, probes, gpu_seconds)
        if prepared.speakers is not None:  # the edge shows it even if no report carried it
            metadata = metadata.model_copy(update={"speakers": prepared.speakers.assignment})
        self._upload(run, video.path, run.claim.output.upload_url, "video/mp4", "video")
        run.log.info("video uploaded", extra={"size_bytes": metadata.size_bytes})
        return metadata

    def _plan(self, run: _Run) -> ResultMetadata | SegmentsQueued:
        """Cut the audio at silences, upload each segment's audio, have the edge queue them.

        A plan of one segment (audio too short to split, or no usable silence) runs as an
        ordinary job here, under the same claim.
        """
        task = _required(run.claim.plan, "plan")
        audio = self._download_audio(run, _share_of(run, 0, 1))
        started = time.monotonic()
        from infinitetalk.media import segment_audio

        try:
            track = segment_audio.decode_track(
                audio, run.workdir / "plan", self._limits.max_audio_seconds
            )
        except InvalidInputError as exc:
            raise JobFailed(_failure_code(exc.code), exc.message, retryable=False) from exc
        bounds = segment_audio.SegmentBounds(
            task.min_seconds, task.max_seconds, task.max_segments, task.agents_seen
        )
        segments = segment_audio.plan_track(track, bounds)
        if len(segments) == 1:
            run.log.info(
                "plan has one segment: running the job whole",
                extra={"audio_seconds": track.info.duration_seconds},
            )
            return self._job(run)
        paths = segment_audio.write_segments(track, segments, run.workdir / "segments")
        planned = time.monotonic()
        _stop_if_cancelled(run.cancel)
        token = run.claim.claim_token
        grants = self._edge_step(
            lambda: self._edge.plan_segments(
                run.claim.job_id,
                SegmentPlanRequest(
                    claim_token=token,
                    audio_seconds=track.info.duration_seconds,
                    segments=[
                        SegmentPlanItem(
                            index=s.index, start_seconds=s.start_seconds, end_seconds=s.end_seconds
                        )
                        for s in segments
                    ],
                ),
            ),
            "register the segments",
        )
        for grant in grants.segments:
            self._upload(
                run,
                paths[grant.index],
                grant.audio_upload_url,
                "audio/wav",
                "segment audio",
                last=False,
            )
        self._edge_step(
            lambda: self._edge.commit_segments(
                run.claim.job_id, SegmentCommitRequest(claim_token=token)
            ),
            "commit the segments",
        )
        if grants.audio_track_upload_url:
            self.tracks.start(
                audio,
                self._edge.resolve(grants.audio_track_upload_url),
                self._limits.max_audio_seconds,
                run.log,
                run.workdir,
            )
        run.log.info(
            "segments queued",
            extra={
                "segments": len(segments),
                "audio_seconds": track.info.duration_seconds,
                "planning_seconds": round(planned - started, 3),
                "plan_total_seconds": round(time.monotonic() - started, 3),
                "cuts": [s.end_seconds for s in segments[:-1]],
            },
        )
        return SegmentsQueued(len(segments))

    def _stitch(self, run: _Run) -> ResultMetadata:
        """Join the segments' videos under the original audio, check every seam, upload."""
        task = _required(run.claim.stitch, "stitch")
        probes = self._probes_or_default()
        count = len(task.segment_urls)
        videos = [
            self._download(
                run,
                url,
                None,
                f"segment-{index}",
                MAX_SEGMENT_VIDEO_BYTES,
                _share_of(run, index, count + 1),
            )
            for index, url in enumerate(task.segment_urls)
        ]
        started = time.monotonic()
        aac_path = self._audio_track(run, task, _share_of(run, count, count + 1))
        _stop_if_cancelled(run.cancel)
        run.report(run.progress.engine(50.0, Stage.ENCODING, None))
        from infinitetalk.media.stitch import stitch

        output = run.workdir / "stitched.mp4"
        try:
            stitched = stitch(
                videos,
                task.segment_seconds,
                aac_path,
                task.audio_seconds,
                output,
                crossfade_frames=task.crossfade_frames,
            )
        except EngineError as exc:
            raise _engine_failure(exc) from exc
        seconds = time.monotonic() - started
        _stop_if_cancelled(run.cancel)
        metadata = self._verify(
            VideoResult(
                output,
                stitched.info.duration_seconds,
                stitched.info.width,
                stitched.info.height,
                self._engine.name,
            ),
            probes,
            seconds,
        )
        self._upload(run, output, run.claim.output.upload_url, "video/mp4", "video")
        run.log.info(
            "segments stitched",
            extra={
                "segments": count,
                "frames": stitched.info.frame_count,
                "stitching_seconds": round(seconds, 3),
                "stream_copy": stitched.copied,
                "seam_offsets_seconds": [round(s.offset_seconds, 3) for s in stitched.seams],
                "size_bytes": metadata.size_bytes,
            },
        )
        return metadata

    def _audio_track(
        self, run: _Run, task: StitchTask, on_fraction: Callable[[float], None]
    ) -> Path:
        """The planner's AAC track when it uploaded one of the audio's length, else the
        original audio encoded here."""
        from infinitetalk.media.audio_pass import encode_aac, track_seconds
        from infinitetalk.media.output import FRAME_SECONDS

        if task.audio_track_url:
            track = self._download(
                run,
                task.audio_track_url,
                None,
                "audio-track",
                self._limits.max_audio_bytes,
                on_fraction,
            )
            seconds = track_seconds(track)
            if seconds is not None and abs(seconds - task.audio_seconds) <= FRAME_SECONDS:
                return track
            run.log.warning(
                "the planner's audio track does not fit; encoding the audio here",
                extra={"track_seconds": seconds, "audio_seconds": task.audio_seconds},
            )
        audio = self._download_audio(run, on_fraction)
        try:
            return encode_aac(
                audio,
                run.workdir / PREPARED_AUDIO_DIR / "audio.m4a",
                self._limits.max_audio_seconds,
            )
        except InvalidInputError as exc:
            raise JobFailed(_failure_code(exc.code), exc.message, retryable=False) from exc

    def _download_audio(self, run: _Run, on_fraction: Callable[[float], None]) -> Path:
        inputs = run.claim.inputs
        return self._download(
            run,
            inputs.audio_url,
            inputs.audio_etag,
            "audio",
            self._limits.max_audio_bytes,
            on_fraction,
        )

    def _probes_or_default(self) -> MediaProbes:
        return self._probes if self._probes is not None else MediaProbes.default()

    def _edge_step(self, call: Callable[[], T], what: str) -> T:
        """A plan call; a stale claim or a gone job means someone else owns the job now."""
        try:
            return call()
        except (ClaimConflict, JobGone) as exc:
            raise _Stopped from exc
        except EdgeError as exc:
            raise JobFailed(
                FailureCode.INTERNAL_ERROR, f"could not {what}: {exc}", retryable=True
            ) from exc

    def _check_quality(self, run: _Run) -> None:
        """Fails before any download and never falls back to another quality."""
        try:
            require_quality(self._engine, run.claim.settings.quality)
        except EngineError as exc:
            raise _engine_failure(exc) from exc

    def _download_inputs(self, run: _Run) -> _Inputs:
        """The picture takes the first `IMAGE_SHARE` of the download phase, the tracks
        share the rest."""
        inputs = run.claim.inputs
        limits = self._limits
        is_video = inputs.video_url is not None
        picture_url = inputs.video_url if is_video else inputs.image_url
        if picture_url is None:
            raise JobFailed(
                FailureCode.INVALID_INPUT, "the claim names no image and no video", retryable=False
            )
        tracks = [("audio", inputs.audio_url, inputs.audio_etag)]
        if inputs.audio2_url is not None:
            tracks.append(("audio2", inputs.audio2_url, inputs.audio2_etag))
        picture = self._download(
            run,
            picture_url,
            inputs.video_etag if is_video else inputs.image_etag,
            "video" if is_video else "image",
            limits.max_video_bytes if is_video else limits.max_image_bytes,
            lambda f: run.report(run.progress.downloading(f * IMAGE_SHARE)),
        )
        share = (1 - IMAGE_SHARE) / len(tracks)

        def track_progress(index: int) -> Callable[[float], None]:
            start = IMAGE_SHARE + index * share
            return lambda f: run.report(run.progress.downloading(start + f * share))

        paths = [
            self._download(run, url, etag, what, limits.max_audio_bytes, track_progress(index))
            for index, (what, url, etag) in enumerate(tracks)
        ]
        return _Inputs(picture, paths[0], paths[1] if len(paths) > 1 else None, is_video)

    def _download(
        self,
        run: _Run,
        url: str,
        etag: str | None,
        what: str,
        max_bytes: int,
        on_fraction: Callable[[float], None],
    ) -> Path:
        """Download one input and give it a suffix that matches its bytes.

        Decoders (and upstream InfiniteTalk) look at the name; downloads arrive under
        neutral ones.
        """
        dest = run.workdir / what
        resolved = self._edge.resolve(url)
        try:
            self._transfer(
                run,
                lambda: download(
                    self._transfers,
                    resolved,
                    dest,
                    max_bytes,
                    on_progress=lambda done, total: on_fraction(done / total if total else 0.0),
                    cancelled=run.cancel.is_set,
                    etag=etag,
                ),
                f"download {what}",
            )
        except InputChanged as exc:
            raise JobFailed(
                FailureCode.INPUT_CHANGED,
                f"the uploaded {what} was replaced after the job was created",
                retryable=False,
            ) from exc
        except PayloadTooLarge as exc:
            raise JobFailed(
                FailureCode.INVALID_INPUT,
                f"the {what} is larger than {max_bytes} bytes",
                retryable=False,
            ) from exc
        except TransferError as exc:
            detail = f" (HTTP {exc.status_code})" if exc.status_code else ""
            raise JobFailed(
                FailureCode.STORAGE_ERROR, f"could not download the {what}{detail}", retryable=True
            ) from exc
        on_fraction(1.0)
        with dest.open("rb") as handle:
            media = sniff(handle.read(SNIFF_BYTES))
        return dest if media is None else dest.rename(dest.with_suffix(media.suffix))

    def _probe_inputs(self, probes: MediaProbes, run: _Run, inputs: _Inputs) -> _Prepared:
        limits = self._limits
        directory = run.workdir / PREPARED_AUDIO_DIR
        try:
            image = inputs.picture
            if inputs.is_video:
                image = run.workdir / FIRST_FRAME
                probes.probe_video_input(
                    inputs.picture, image, limits.max_image_pixels, limits.max_video_seconds
                )
            else:
                probes.probe_image(image, limits.max_image_pixels)
            if inputs.audio2 is None:
                audio = probes.prepare_audio(inputs.audio, directory, limits.max_audio_seconds)
                return _Prepared(image, inputs.audio, audio, None)
            settings = run.claim.settings
            if settings.speaker_boxes is not None:
                assignment = SpeakerAssignment(boxes=settings.speaker_boxes, source=BoxSource.GIVEN)
            else:
                assignment = probes.find_speakers(image)
            run.log.info(
                "speakers assigned",
                extra={"source": assignment.source.value, "boxes": assignment.boxes},
            )
            run.report(run.progress.assigned(assignment))
            mixed, audio, speakers = probes.prepare_speakers(
                inputs.audio,
                inputs.audio2,
                settings.speaker_mode or SpeakerMode.SEQUENTIAL,
                assignment,
                directory,
                limits.max_audio_seconds,
            )
            return _Prepared(image, mixed, audio, speakers)
        except InvalidInputError as exc:
            raise JobFailed(_failure_code(exc.code), exc.message, retryable=False) from exc

    def _generate(self, run: _Run, inputs: _Inputs, prepared: _Prepared) -> VideoResult:
        engine_dir = run.workdir / "engine"
        engine_dir.mkdir()
        settings = run.claim.settings
        request = VideoRequest(
            image_path=prepared.image,
            audio_path=prepared.audio_path,
            prompt=run.claim.prompt,
            resolution=settings.resolution,
            seed=settings.seed,
            quality=settings.quality,
            audio=prepared.audio,
            video_path=inputs.picture if inputs.is_video else None,
            speakers=prepared.speakers,
        )
        run.log.info(
            "engine started",
            extra={
                "engine": self._engine.name,
                "quality": request.quality.value,
                "input_kind": "video" if inputs.is_video else "image",
                "speakers": 2 if prepared.speakers else 1,
            },
        )
        try:
            video = self._engine.generate(
                request,
                engine_dir,
                lambda percent, stage, eta: run.report(run.progress.engine(percent, stage, eta)),
                run.cancel.is_set,
            )
        except CancelledError as exc:
            raise _Stopped from exc
        except EngineError as exc:
            raise _engine_failure(exc) from exc
        return video

    def _verify(
        self, video: VideoResult, probes: MediaProbes, gpu_seconds: float
    ) -> ResultMetadata:
        """The engine checks its output too; this guards against uploading a broken file.
        `gpu_seconds`: the engine's wall time, which the edge meters as GPU seconds."""
        try:
            size = video.path.stat().st_size
            facts = probes.probe_video(video.path)
            if size <= 0 or not facts.duration_seconds > 0:
                raise ValueError("empty video")
            return ResultMetadata(
                size_bytes=size,
                duration_seconds=facts.duration_seconds,
                width=facts.width,
                height=facts.height,
                engine=video.engine,
                gpu_seconds=round(gpu_seconds, 3),
            )
        except (OSError, ValueError, EngineError) as exc:
            raise JobFailed(
                FailureCode.GENERATION_FAILED,
                "the engine produced an unreadable video",
                retryable=True,
            ) from exc

    def _upload(
        self, run: _Run, path: Path, url: str, content_type: str, what: str, *, last: bool = True
    ) -> None:
        """`last`: the run's final upload, reported as the last phase of its progress (a
        planner's segment audio is not: its job's progress starts again with the segments)."""

        def report(fraction: float) -> None:
            if last:
                run.report(run.progress.uploading(fraction))

        report(0.0)
        resolved = self._edge.resolve(url)
        try:
            self._transfer(
                run,
                lambda: upload(
                    self._transfers,
                    resolved,
                    path,
                    content_type,
                    on_progress=lambda sent, total: report(sent / total if total else 1.0),
                    cancelled=run.cancel.is_set,
                ),
                f"upload {what}",
            )
        except TransferError as exc:
            raise JobFailed(
                FailureCode.STORAGE_ERROR, f"could not upload the {what}", retryable=True
            ) from exc

    def _transfer(self, run: _Run, once: Callable[[], int], what: str) -> int:
        """Retry a transfer from its start; a cancel between tries ends it at the next try."""

        def attempt() -> int:
            if run.cancel.is_set():
                raise TransferCancelled(f"{what} cancelled")
            return once()

        return self._limits.transfer_retry.call(attempt, what=what)


def _share_of(run: _Run, index: int, parts: int) -> Callable[[float], None]:
    """Download progress of the `index`-th of `parts` equal downloads."""
    return lambda fraction: run.report(run.progress.downloading((index + fraction) / parts))


def _required(block: T | None, task: str) -> T:
    if block is None:
        raise JobFailed(
            FailureCode.INTERNAL_ERROR,
            f"the claim of a {task} task has no {task} block",
            retryable=False,
        )
    return block


def _stop_if_cancelled(cancel: CancelSignal) -> None:
    if cancel.is_set():
        raise _Stopped


def _engine_failure(exc: EngineError) -> JobFailed:
    return JobFailed(_failure_code(exc.code), exc.message or str(exc), retryable=exc.retryable)


def _failure_code(code: str) -> FailureCode:
    """Engine codes outside the contract's list become GENERATION_FAILED."""
    try:
        return FailureCode(code)
    except ValueError:
        return FailureCode.GENERATION_FAILED
