"""Two speakers' audio: both tracks decoded once, laid out on the output's timeline.

`sequential` puts the second track after the first (upstream's `add`), `simultaneous`
starts both at zero (upstream's `para`) and pads the shorter with silence, because
upstream sums the two and crashes on different lengths. The output's audio is the mix,
which then takes the job's usual audio pass (`audio_pass.prepare_audio`: AAC track,
loudness, short-audio padding); each speaker keeps an envelope of their own on the same
timeline for the preview, and a 16 kHz WAV for upstream, long enough for one chunk.
"""

from pathlib import Path

import av
import numpy as np

from contracts import SpeakerAssignment, SpeakerMode
from contracts.media import MAX_AUDIO_SECONDS
from infinitetalk.engine import PreparedAudio, SpeakerTracks
from infinitetalk.media.audio_pass import (
    PAD_RATE,
    PADDED_AUDIO_SECONDS,
    LengthLimit,
    prepare_audio,
    write_mono_wav,
)
from infinitetalk.media.output import OUTPUT_FPS
from infinitetalk.media.probe import probe_audio

MIX_RATE = 48000
MIXED_NAME = "mixed.wav"
MIXED_AUDIO_DIR = "mixed"


class _Collect:
    """A probe sink keeping the track as mono float samples at `rate`."""

    def __init__(self, rate: int) -> None:
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        self.chunks: list[np.ndarray] = []

    def __call__(self, frame: av.AudioFrame | None) -> None:
        for chunk in self._resampler.resample(frame):
            self.chunks.append(chunk.to_ndarray().reshape(-1).astype(np.float32))

    def array(self) -> np.ndarray:
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0, dtype=np.float32)


def prepare_speakers(
    first: Path,
    second: Path,
    mode: SpeakerMode,
    assignment: SpeakerAssignment,
    directory: Path,
    max_seconds: float = MAX_AUDIO_SECONDS,
) -> tuple[Path, PreparedAudio, SpeakerTracks]:
    """The mixed track (a WAV), its audio pass, and each speaker's files under `directory`.

    Raises InvalidInputError for a track that is not complete WAV/MP3 or is too long."""
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    tracks = []
    for name, path in (("audio", first), ("audio2", second)):
        mix, model = _Collect(MIX_RATE), _Collect(PAD_RATE)
        probe_audio(path, [LengthLimit(max_seconds, name), mix, model])
        tracks.append((mix.array(), model.array()))
    (one, one_model), (two, two_model) = tracks
    placed = _lay_out(one, two, mode)
    mixed_path = _write_wav(directory / MIXED_NAME, np.clip(placed[0] + placed[1], -1, 1), MIX_RATE)
    prepared = prepare_audio(mixed_path, directory / MIXED_AUDIO_DIR, 2 * max_seconds)
    loudness = []
    for index, samples in enumerate(placed):
        path = directory / f"speaker{index + 1}.f64"
        _envelope(samples).tofile(str(path))
        loudness.append(path)
    models = _model_tracks(one_model, two_model, mode)
    model_paths = [
        _write_wav(directory / f"person{index + 1}.wav", samples, PAD_RATE)
        for index, samples in enumerate(models)
    ]
    speakers = SpeakerTracks(
        mode=mode,
        assignment=assignment,
        loudness_paths=(loudness[0], loudness[1]),
        model_paths=(model_paths[0], model_paths[1]),
    )
    return mixed_path, prepared, speakers


def _lay_out(one: np.ndarray, two: np.ndarray, mode: SpeakerMode) -> tuple[np.ndarray, np.ndarray]:
    """Both speakers on one timeline of equal length: one after the other, or together."""
    if mode is SpeakerMode.SEQUENTIAL:
        total = one.size + two.size
        first, second = np.zeros(total, np.float32), np.zeros(total, np.float32)
        first[: one.size] = one
        second[one.size :] = two
        return first, second
    return _pad(one, max(one.size, two.size)), _pad(two, max(one.size, two.size))


def _model_tracks(one: np.ndarray, two: np.ndarray, mode: SpeakerMode) -> list[np.ndarray]:
    """What upstream embeds: `add` takes the tracks as they are and concatenates them
    itself; `para` needs equal lengths. Either way together they reach one chunk, with
    silence at the end (the output is trimmed back to the mix's length)."""
    needed = int(np.ceil(PADDED_AUDIO_SECONDS * PAD_RATE))
    if mode is SpeakerMode.SEQUENTIAL:
        return [one, _pad(two, max(two.size, needed - one.size))]
    length = max(one.size, two.size, needed)
    return [_pad(one, length), _pad(two, length)]


def _pad(samples: np.ndarray, length: int) -> np.ndarray:
    padded = np.zeros(length, dtype=np.float32)
    padded[: samples.size] = samples[:length]
    return padded


def _envelope(samples: np.ndarray) -> np.ndarray:
    """RMS per 40 ms video frame, as `audio_pass` writes the job's loudness."""
    hop = MIX_RATE // OUTPUT_FPS
    frames = -(-samples.size // hop)
    padded = _pad(samples, frames * hop).astype(np.float64).reshape(frames, hop)
    return np.sqrt(np.mean(padded * padded, axis=1))


def _write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    return write_mono_wav(path, (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16), rate)
