"""A parallel job's planning pass over its audio: one decode, a plan, one WAV per segment.

The decode (`probe.probe_audio`, with the same checks and length limit as a job's audio
pass) writes a PCM16 copy at the source's rate and measures 10 ms levels for the voice
activity;
the segments are then sliced from that copy by sample index. Each segment lasts exactly
its whole number of video frames (`frames x rate / 25` samples: an integer for every
usual rate, which are all multiples of 25), the last one padded with silence or trimmed
by less than a frame, so each engine makes exactly `PlannedSegment.frames` frames from it
and the stitched video has the unsplit job's frame count.
"""

import wave
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from contracts.media import MAX_AUDIO_SECONDS
from infinitetalk.engine import AudioInfo
from infinitetalk.media.audio_pass import LengthLimit
from infinitetalk.media.output import OUTPUT_FPS
from infinitetalk.media.probe import probe_audio
from infinitetalk.media.segment_plan import PlannedSegment, plan_segments
from infinitetalk.media.voice_activity import (
    HOP_SECONDS,
    find_silences,
    levels_db,
    speech_mask,
)

PCM_NAME = "decoded.wav"
SAMPLE_BYTES = 2


@dataclass(frozen=True)
class DecodedTrack:
    """The audio once decoded: its facts, a PCM16 copy and its levels per 10 ms."""

    info: AudioInfo
    pcm_path: Path
    levels: np.ndarray
    hop_seconds: float


@dataclass(frozen=True)
class SegmentBounds:
    """The limits a plan respects (the edge's PlanTask)."""

    min_seconds: float
    max_seconds: float
    max_segments: int | None
    agents_seen: int


def decode_track(
    path: Path, directory: Path, max_seconds: float = MAX_AUDIO_SECONDS
) -> DecodedTrack:
    """Decode `path` once into `directory`; InvalidInputError as for any job's audio."""
    directory.mkdir(parents=True, exist_ok=True)
    with _PcmWriter(directory / PCM_NAME) as pcm:
        info = probe_audio(path, [LengthLimit(max_seconds), pcm])
    return DecodedTrack(info, pcm.path, levels_db(np.asarray(pcm.rms)), pcm.hop_seconds)


def plan_track(track: DecodedTrack, bounds: SegmentBounds) -> list[PlannedSegment]:
    """Cut points at the track's silences, within `bounds`."""
    silences = find_silences(speech_mask(track.levels), hop_seconds=track.hop_seconds)
    return plan_segments(
        track.info.duration_seconds,
        silences,
        min_seconds=bounds.min_seconds,
        max_seconds=bounds.max_seconds,
        max_segments=bounds.max_segments,
        agents_seen=bounds.agents_seen,
    )


def write_segments(
    track: DecodedTrack, segments: list[PlannedSegment], directory: Path
) -> list[Path]:
    """One PCM16 WAV per segment, each exactly its frames long."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    with wave.open(str(track.pcm_path), "rb") as source:
        rate, channels = source.getframerate(), source.getnchannels()
        available = source.getnframes()
        for segment in segments:
            first = _sample_at(segment.start_frame, rate)
            count = _sample_at(segment.end_frame, rate) - first
            source.setpos(min(first, available))
            data = source.readframes(count)
            data += bytes(count * channels * SAMPLE_BYTES - len(data))  # pad the last one
            path = directory / f"segment-{segment.index}.wav"
            with wave.open(str(path), "wb") as out:
                out.setnchannels(channels)
                out.setsampwidth(SAMPLE_BYTES)
                out.setframerate(rate)
                out.writeframes(data)
            paths.append(path)
    return paths


def _sample_at(frame: int, rate: int) -> int:
    return round(Fraction(frame * rate, OUTPUT_FPS))


class _PcmWriter:
    """Writes every decoded frame as interleaved PCM16 at the source's rate (mono stays
    mono, otherwise the first two channels), and measures the RMS of every `HOP_SECONDS`
    of the mono mix. Plain NumPy on the decoded samples: a resampler per frame would cost
    more than the decode."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rms: list[float] = []
        self.hop_seconds = HOP_SECONDS
        self._wav: wave.Wave_write | None = None
        self._hop = 0
        self._pending = np.zeros(0, dtype=np.float64)

    def __enter__(self) -> "_PcmWriter":
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._wav is not None:
            self._wav.close()

    def __call__(self, frame: av.AudioFrame | None) -> None:
        if frame is None:
            self._measure(final=True)
            return
        samples = _as_float(frame)
        if self._wav is None:
            self._start(frame.sample_rate, min(samples.shape[0], 2))
        assert self._wav is not None
        kept = samples[: self._wav.getnchannels()]
        pcm = np.clip(np.round(kept.T * 32768.0), -32768, 32767).astype("<i2")
        self._wav.writeframesraw(pcm.tobytes())  # the header is written once, at close
        self._pending = np.concatenate((self._pending, samples.mean(axis=0)))
        self._measure(final=False)

    def _start(self, rate: int, channels: int) -> None:
        self._wav = wave.open(str(self.path), "wb")  # noqa: SIM115 - closed by __exit__
        self._wav.setnchannels(channels)
        self._wav.setsampwidth(SAMPLE_BYTES)
        self._wav.setframerate(rate)
        self._hop = max(1, round(rate * HOP_SECONDS))
        self.hop_seconds = self._hop / rate

    def _measure(self, *, final: bool) -> None:
        whole = len(self._pending) // self._hop if self._hop else 0
        if whole:
            hops = self._pending[: whole * self._hop].reshape(whole, self._hop)
            self.rms.extend(np.sqrt(np.mean(hops * hops, axis=1)).tolist())
            self._pending = self._pending[whole * self._hop :]
        if final and len(self._pending):
            self.rms.append(float(np.sqrt(np.mean(self._pending * self._pending))))


_FULL_SCALE = {"u8": 128.0, "s16": 32768.0, "s32": 2147483648.0, "flt": 1.0, "dbl": 1.0}


def _as_float(frame: av.AudioFrame) -> np.ndarray:
    """The frame's samples as (channels, samples) floats in [-1, 1]."""
    name = frame.format.name.removesuffix("p")
    data = frame.to_ndarray().astype(np.float64)
    if name == "u8":
        data -= 128.0
    channels = len(frame.layout.channels)
    if not frame.format.is_planar:
        data = data.reshape(-1, channels).T
    return data / _FULL_SCALE[name]
