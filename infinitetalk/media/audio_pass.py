"""The job's one pass over its speech audio: it is decoded once, here, and never again.

`prepare_audio` validates and measures the audio (`probe.probe_audio`) and, from the
same decoded frames, writes everything later steps need into the job's directory: the
output's AAC track (stream-copied by `mux.AudioFeed`), the preview's loudness envelope,
and, for audio too short for one chunk of upstream InfiniteTalk, the padded 16 kHz copy
upstream embeds instead. Samples stream through; memory stays bounded for long audio.
"""

import math
import wave
from array import array
from pathlib import Path

import av
import numpy as np

from contracts import FailureCode
from contracts.media import MAX_AUDIO_SECONDS
from infinitetalk.engine import InvalidInputError, PreparedAudio
from infinitetalk.media.mux import AacWriter
from infinitetalk.media.output import OUTPUT_FPS
from infinitetalk.media.probe import probe_audio
from infinitetalk.upstream import pinned

AAC_NAME = "audio.m4a"
LOUDNESS_NAME = "loudness.f64"
PADDED_NAME = "padded.wav"

ANALYSIS_RATE = 8000
"""Loudness only needs the speech band, so it is measured on a cheap 8 kHz mono copy."""
PAD_MARGIN_FRAMES = 5
"""Resampling to 16 kHz may lose a frame; stay clear of upstream's assert."""
PADDED_AUDIO_SECONDS = (pinned.MIN_EMBEDDING_FRAMES + PAD_MARGIN_FRAMES) / OUTPUT_FPS
"""3.48 s: upstream asserts on shorter audio, so it gets a copy padded with silence."""
PAD_RATE = 16000
"""Upstream resamples to 16 kHz mono before embedding, so the padded copy is made so."""


def prepare_audio(
    path: Path, directory: Path, max_seconds: float = MAX_AUDIO_SECONDS
) -> PreparedAudio:
    """Decode `path` once into the job's audio files under `directory`.

    Raises InvalidInputError for audio that is not a complete WAV or MP3, or that is
    longer than `max_seconds` (code AUDIO_TOO_LONG; decoding stops there).
    """
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    loudness = _Loudness()
    head = _Head(math.ceil(PADDED_AUDIO_SECONDS * PAD_RATE))
    with AacWriter(directory / AAC_NAME) as aac:
        info = probe_audio(path, [LengthLimit(max_seconds), aac, loudness, head])
    loudness_path = directory / LOUDNESS_NAME
    with loudness_path.open("wb") as handle:
        loudness.levels.tofile(handle)
    padded = None
    if info.duration_seconds < PADDED_AUDIO_SECONDS:
        padded = head.write_padded(directory / PADDED_NAME)
    return PreparedAudio(
        info=info, aac_path=aac.path, loudness_path=loudness_path, padded_path=padded
    )


def encode_aac(path: Path, destination: Path, max_seconds: float = MAX_AUDIO_SECONDS) -> Path:
    """Only the output's AAC track, as `prepare_audio` writes it: a parallel job's planner
    encodes it once for the stitch, which then only remuxes it."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    with AacWriter(destination) as aac:
        probe_audio(path, [LengthLimit(max_seconds), aac])
    return aac.path


def track_seconds(path: Path) -> float | None:
    """How long an AAC track's header says it is; None for anything else or unreadable."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            if stream.codec_context.name != "aac" or not stream.duration or not stream.time_base:
                return None
            return float(stream.duration * stream.time_base)
    except (av.FFmpegError, IndexError):
        return None


def read_loudness(path: Path) -> np.ndarray:
    """The envelope `prepare_audio` wrote: one RMS level per 40 ms video frame."""
    return np.fromfile(str(path), dtype=np.float64)


class LengthLimit:
    """Stops the decode once the audio is longer than the limit: headers can lie (the edge
    judged it by them), the decoded samples cannot."""

    def __init__(self, max_seconds: float, name: str = "audio") -> None:
        self._max_seconds = max_seconds
        self._name = name
        self._samples = 0

    def __call__(self, frame: av.AudioFrame | None) -> None:
        if frame is None:
            return
        self._samples += frame.samples  # whole samples: a sum of float seconds made 600 s > 600
        if self._samples > self._max_seconds * frame.sample_rate:
            raise InvalidInputError(
                f"{self._name} is longer than the limit of {self._max_seconds:g} s",
                FailureCode.AUDIO_TOO_LONG,
            )


class _Loudness:
    """RMS of the audio under each video frame (40 ms windows of an 8 kHz mono copy)."""

    def __init__(self) -> None:
        hop = ANALYSIS_RATE // OUTPUT_FPS
        self._resampler = av.AudioResampler(
            format="flt", layout="mono", rate=ANALYSIS_RATE, frame_size=hop
        )
        self.levels = array("d")

    def __call__(self, frame: av.AudioFrame | None) -> None:
        for chunk in self._resampler.resample(frame):
            samples = chunk.to_ndarray()[0].astype(np.float64)
            self.levels.append(math.sqrt(float(np.mean(samples * samples))))


class _Head:
    """The audio's start as 16 kHz mono 16-bit samples, kept up to `limit` samples.

    Whatever is shorter than the padded length fits, so the padded copy needs no decode.
    """

    def __init__(self, limit: int) -> None:
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=PAD_RATE)
        self._limit = limit
        self._chunks: list[np.ndarray] = []
        self._kept = 0

    def __call__(self, frame: av.AudioFrame | None) -> None:
        if self._kept > self._limit:
            return
        for resampled in self._resampler.resample(frame):
            chunk = resampled.to_ndarray().reshape(-1)
            self._chunks.append(chunk)
            self._kept += len(chunk)

    def write_padded(self, destination: Path) -> Path:
        """A 16 kHz mono WAV of the kept samples followed by silence up to the limit."""
        samples = np.concatenate(self._chunks) if self._chunks else np.zeros(0, dtype=np.int16)
        padded = np.zeros(max(len(samples), self._limit), dtype=np.int16)
        padded[: len(samples)] = samples
        return write_mono_wav(destination, padded, PAD_RATE)


def write_mono_wav(destination: Path, samples: np.ndarray, rate: int) -> Path:
    """16-bit mono PCM samples as a WAV."""
    with wave.open(str(destination), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.astype("<i2").tobytes())
    return destination
