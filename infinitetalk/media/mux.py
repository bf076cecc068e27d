"""Writing the output contract's streams: H.264 video and the job's original audio as AAC.

Shared by every engine so the output contract's stream rules (H.264 yuv420p, BT.709, AAC,
25 fps, faststart, original audio) live in one place.
"""

from collections.abc import Generator
from dataclasses import dataclass
from fractions import Fraction
from itertools import chain
from pathlib import Path

import av
from av.video.reformatter import ColorRange

from infinitetalk.media.output import OUTPUT_FPS
from infinitetalk.media.probe import AudioInfo

AAC_FRAME_SAMPLES = 1024
AAC_FALLBACK_RATE = 48000
MP4_OPTIONS = {"movflags": "+faststart"}
_BT709 = 1
"""FFmpeg's code for BT.709 primaries, transfer and matrix alike: HD players assume it."""


@dataclass(frozen=True)
class AudioTrack:
    """The original audio and the AAC form it is re-encoded to."""

    path: Path
    rate: int
    layout: str

    @classmethod
    def for_source(cls, path: Path, info: AudioInfo) -> "AudioTrack":
        """Keep the source's rate and mono/stereo where AAC allows it."""
        rate = info.sample_rate if info.sample_rate in aac_rates() else AAC_FALLBACK_RATE
        return cls(path=path, rate=rate, layout="mono" if info.channels == 1 else "stereo")


def aac_rates() -> frozenset[int]:
    return frozenset(av.codec.Codec("aac", "w").audio_rates or ())


def add_h264_stream(
    container: av.container.OutputContainer, size: tuple[int, int], options: dict[str, str]
) -> av.video.stream.VideoStream:
    """A 25 fps yuv420p H.264 stream tagged BT.709 (limited range)."""
    video = container.add_stream("libx264", rate=OUTPUT_FPS, options=options)
    video.width, video.height = size
    video.pix_fmt = "yuv420p"
    context = video.codec_context
    context.time_base = Fraction(1, OUTPUT_FPS)
    context.colorspace = context.color_primaries = context.color_trc = _BT709
    context.color_range = ColorRange.MPEG.value
    return video


def add_aac_stream(
    container: av.container.OutputContainer, track: AudioTrack
) -> av.audio.stream.AudioStream:
    audio = container.add_stream("aac", rate=track.rate, layout=track.layout)
    audio.bit_rate = min(64000 if track.layout == "mono" else 128000, 3 * track.rate)
    return audio


def aac_frames(track: AudioTrack) -> Generator[av.AudioFrame]:
    """Decode the original audio and cut it into AAC-sized planar float frames."""
    resampler = av.AudioResampler(
        format="fltp", layout=track.layout, rate=track.rate, frame_size=AAC_FRAME_SAMPLES
    )
    samples = 0
    with av.open(str(track.path)) as container:
        for decoded in chain(container.decode(audio=0), [None]):
            for frame in resampler.resample(decoded):
                frame.pts = samples
                frame.time_base = Fraction(1, track.rate)
                samples += frame.samples
                yield frame


class AudioFeed:
    """Muxes the re-encoded audio in step with the video, so players find both interleaved."""

    def __init__(self, container: av.container.OutputContainer, track: AudioTrack) -> None:
        self.container = container
        self.track = track
        self.stream = add_aac_stream(container, track)
        self.frames = aac_frames(track)
        self.pending = next(self.frames, None)

    def mux_until(self, seconds: float) -> None:
        """Mux every audio frame that starts before `seconds` into the file."""
        sample = seconds * self.track.rate
        while self.pending is not None and (self.pending.pts or 0) < sample:
            self.container.mux(self.stream.encode(self.pending))
            self.pending = next(self.frames, None)

    def finish(self) -> None:
        """Mux what is left of the audio and flush the encoder."""
        self.mux_until(float("inf"))
        self.container.mux(self.stream.encode(None))

    def close(self) -> None:
        self.frames.close()
