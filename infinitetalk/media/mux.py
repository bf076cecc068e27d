"""Writing the output contract's streams: H.264 video and the job's original audio as AAC.

Shared by every engine so the output contract's stream rules (H.264 yuv420p, BT.709, AAC,
25 fps, faststart, original audio) live in one place.
"""

from fractions import Fraction
from pathlib import Path

import av
from av.video.reformatter import ColorRange

from infinitetalk.media.output import OUTPUT_FPS

AAC_FRAME_SAMPLES = 1024
AAC_FALLBACK_RATE = 48000
MP4_OPTIONS = {"movflags": "+faststart"}
AAC_OPTIONS = {"aac_coder": "fast"}
"""FFmpeg's default coder (twoloop) encodes speech at about 30x real time on one core, so
ten minutes took 20 s; `fast` is 3-4x quicker and measured no worse on speech at these
bitrates (signal-to-noise 35 dB against 29 dB at 48 kbit/s mono, bench/README.md)."""
_BT709 = 1
"""FFmpeg's code for BT.709 primaries, transfer and matrix alike: HD players assume it."""


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


class AacWriter:
    """Encodes the job's decoded audio as AAC into an M4A, as the output will carry it.

    Fed by the job's one decode (an `AudioSink`); keeps the source's rate and mono/stereo
    where AAC allows it. The M4A keeps the encoder's priming in its edit list, so a
    stream copy into the output keeps the audio's exact length.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._container: av.container.OutputContainer | None = None
        self._stream: av.audio.stream.AudioStream | None = None
        self._resampler: av.AudioResampler | None = None
        self._samples = 0

    def __enter__(self) -> "AacWriter":
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._container is not None:
            self._container.close()

    def __call__(self, frame: av.AudioFrame | None) -> None:
        if frame is not None and self._stream is None:
            self._start(frame.sample_rate, len(frame.layout.channels))
        if self._stream is None or self._resampler is None or self._container is None:
            return
        for resampled in self._resampler.resample(frame):
            resampled.pts = self._samples
            resampled.time_base = Fraction(1, resampled.sample_rate)
            self._samples += resampled.samples
            self._container.mux(self._stream.encode(resampled))
        if frame is None:
            self._container.mux(self._stream.encode(None))

    def _start(self, source_rate: int, channels: int) -> None:
        rate = source_rate if source_rate in aac_rates() else AAC_FALLBACK_RATE
        layout = "mono" if channels == 1 else "stereo"
        self._container = av.open(str(self.path), "w", format="ipod")
        self._stream = self._container.add_stream("aac", rate=rate, layout=layout)
        self._stream.bit_rate = min(64000 if layout == "mono" else 128000, 3 * rate)
        self._stream.codec_context.options = dict(AAC_OPTIONS)
        self._resampler = av.AudioResampler(
            format="fltp", layout=layout, rate=rate, frame_size=AAC_FRAME_SAMPLES
        )


class AudioFeed:
    """Stream-copies the job's AAC track in step with the video, so players find both
    interleaved; the audio is not decoded or encoded again."""

    def __init__(self, container: av.container.OutputContainer, aac_path: Path) -> None:
        self.container = container
        self.source = av.open(str(aac_path))
        audio = self.source.streams.audio[0]
        self.stream = container.add_stream_from_template(audio)
        self.packets = self.source.demux(audio)
        self.pending = self._next()

    def _next(self) -> av.Packet | None:
        """The next packet that carries audio (the demuxer ends with an empty one)."""
        return next((packet for packet in self.packets if packet.dts is not None), None)

    def mux_until(self, seconds: float) -> None:
        """Mux every audio packet that starts before `seconds` into the file."""
        while self.pending is not None and _start_seconds(self.pending) < seconds:
            self.pending.stream = self.stream
            self.container.mux(self.pending)
            self.pending = self._next()

    def finish(self) -> None:
        """Mux what is left of the audio."""
        self.mux_until(float("inf"))

    def close(self) -> None:
        self.source.close()


def _start_seconds(packet: av.Packet) -> float:
    start = packet.pts if packet.pts is not None else packet.dts
    return float((start or 0) * (packet.time_base or 0))
