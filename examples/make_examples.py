"""Generate the example portrait and speech clip used by the docs, the demo and the tests.

Synthetic on purpose: no licensing questions, tiny files, byte-for-byte reproducible.
Run `python examples/make_examples.py` to (re)write `portrait.png` and `speech.wav` here.
"""

import wave
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFilter

EXAMPLES_DIR = Path(__file__).resolve().parent
SEED = 20240611

# Vowel formants (F1, F2, F3 in Hz) give each syllable a different, speech-like colour.
_VOWELS: tuple[tuple[float, float, float], ...] = (
    (730.0, 1090.0, 2440.0),  # a
    (530.0, 1840.0, 2480.0),  # e
    (270.0, 2290.0, 3010.0),  # i
    (570.0, 840.0, 2410.0),  # o
    (300.0, 870.0, 2240.0),  # u
)


def make_portrait(path: Path | str, size: tuple[int, int] = (512, 640)) -> Path:
    """Draw a face-like head-and-shoulders portrait, laid out where the preview engine looks.

    Drawn at twice the size and downscaled so edges are anti-aliased, like a photo.
    """
    width, height = size
    scale = 2
    w, h = width * scale, height * scale
    short = min(w, h)

    ys = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    top = np.array([92, 120, 150], dtype=np.float32)
    bottom = np.array([190, 200, 210], dtype=np.float32)
    gradient = top + (bottom - top) * ys
    background = np.broadcast_to(gradient, (h, w, 3)).astype(np.uint8)
    img = Image.fromarray(background, "RGB")
    draw = ImageDraw.Draw(img)

    cx, cy = w / 2, 0.42 * h
    fw, fh = 0.28 * short, 0.36 * short
    skin = (224, 178, 148)
    skin_shadow = (200, 150, 122)

    def ellipse(x: float, y: float, rx: float, ry: float, fill: tuple[int, int, int]) -> None:
        draw.ellipse((x - rx, y - ry, x + rx, y + ry), fill=fill)

    draw.rectangle((cx - 0.38 * fw, cy + 0.6 * fh, cx + 0.38 * fw, 0.9 * h), fill=skin_shadow)
    ellipse(cx, 1.18 * h, 0.8 * short, 0.4 * h, (52, 70, 110))
    ellipse(cx, cy - 0.08 * fh, 1.08 * fw, 1.06 * fh, (58, 40, 30))
    ellipse(cx - fw, cy + 0.05 * fh, 0.14 * fw, 0.2 * fh, skin_shadow)
    ellipse(cx + fw, cy + 0.05 * fh, 0.14 * fw, 0.2 * fh, skin_shadow)
    ellipse(cx, cy + 0.05 * fh, fw, fh, skin)
    draw.chord(
        (cx - 1.02 * fw, cy - 1.12 * fh, cx + 1.02 * fw, cy - 0.1 * fh), 180, 360, fill=(58, 40, 30)
    )

    eye_y = cy - 0.08 * fh
    for side in (-1, 1):
        ex = cx + side * 0.4 * fw
        ellipse(ex, eye_y, 0.2 * fw, 0.09 * fh, (248, 248, 244))
        ellipse(ex, eye_y, 0.085 * fw, 0.085 * fh, (70, 100, 60))
        ellipse(ex, eye_y, 0.04 * fw, 0.04 * fh, (15, 15, 15))
        brow = (ex - 0.22 * fw, eye_y - 0.2 * fh, ex + 0.22 * fw, eye_y - 0.12 * fh)
        draw.rounded_rectangle(brow, radius=0.04 * fh, fill=(60, 42, 32))

    nose = [(cx, cy + 0.02 * fh), (cx - 0.1 * fw, cy + 0.3 * fh), (cx + 0.1 * fw, cy + 0.3 * fh)]
    draw.polygon(nose, fill=skin_shadow)

    mouth_y = cy + 0.52 * fh
    ellipse(cx, mouth_y, 0.3 * fw, 0.075 * fh, (150, 60, 64))
    ellipse(cx, mouth_y, 0.25 * fw, 0.022 * fh, (70, 22, 28))

    img = img.filter(ImageFilter.GaussianBlur(scale * 0.6)).resize(
        (width, height), Image.Resampling.LANCZOS
    )
    out = Path(path)
    img.save(out, format="PNG", optimize=True)
    return out


def speech_signal(seconds: float, sample_rate: int, seed: int = SEED) -> np.ndarray:
    """A voiced, speech-like float32 signal in [-1, 1].

    Syllables at about 4 Hz with phrase pauses, a 120-220 Hz pitch contour, harmonics
    shaped by vowel formants and short noise bursts for consonants: enough for the preview
    engine's loudness tracking and for decoders to see realistic content.
    """
    rng = np.random.default_rng(seed)
    n = round(seconds * sample_rate)
    t = np.arange(n) / sample_rate

    envelope = np.zeros(n)
    formants = np.zeros((n, 3))
    consonant = np.zeros(n)
    pos = 0.15
    syllables_left = int(rng.integers(3, 7))
    while pos < seconds - 0.2:
        length = float(rng.uniform(0.14, 0.28))
        start, end = round(pos * sample_rate), min(n, round((pos + length) * sample_rate))
        span = end - start
        phase = np.linspace(0.0, np.pi, span)
        envelope[start:end] = np.sin(phase) ** 0.7 * rng.uniform(0.6, 1.0)
        formants[start:end] = _VOWELS[int(rng.integers(len(_VOWELS)))]
        burst = min(span, round(0.03 * sample_rate))
        consonant[start : start + burst] = np.linspace(1.0, 0.0, burst) * rng.uniform(0.1, 0.3)
        pos += length + float(rng.uniform(0.02, 0.08))
        syllables_left -= 1
        if syllables_left == 0:
            pos += float(rng.uniform(0.35, 0.6))
            syllables_left = int(rng.integers(3, 7))

    drift = np.cumsum(rng.normal(0.0, 1.0, n)) / np.sqrt(sample_rate)
    drift = drift - np.linspace(drift[0], drift[-1], n)
    f0 = 170.0 + 35.0 * np.sin(2 * np.pi * 0.3 * t) + 25.0 * np.tanh(drift)
    f0 = np.clip(f0, 120.0, 220.0)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate

    voiced = np.zeros(n)
    for k in range(1, 40):
        freq = k * f0
        audible = freq < 0.45 * sample_rate
        gain = 0.15 / k
        for i, bandwidth in enumerate((90.0, 110.0, 170.0)):
            gain = gain + (1.0 / k) / (1.0 + ((freq - formants[:, i]) / bandwidth) ** 2)
        voiced += np.where(audible, gain, 0.0) * np.sin(k * phase)

    noise = rng.normal(0.0, 1.0, n)
    noise = np.diff(noise, prepend=0.0)
    signal = voiced * envelope + noise * consonant
    signal *= 0.7 / np.max(np.abs(signal))
    return signal.astype(np.float32)


def make_speech_wav(
    path: Path | str, seconds: float = 6.0, sample_rate: int = 16000, channels: int = 1
) -> Path:
    """Write the synthetic speech as 16-bit PCM WAV (every channel carries the same voice)."""
    pcm = np.round(speech_signal(seconds, sample_rate) * 32767).astype("<i2")
    interleaved = np.repeat(pcm[:, None], channels, axis=1)
    out = Path(path)
    with wave.open(str(out), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(interleaved.tobytes())
    return out


def make_speech_mp3(
    path: Path | str, seconds: float = 6.0, sample_rate: int = 44100, channels: int = 1
) -> Path:
    """Write the synthetic speech as MP3 with PyAV's LAME encoder (RuntimeError without it)."""
    if "libmp3lame" not in av.codecs_available:
        raise RuntimeError("this PyAV build has no libmp3lame encoder")
    layout = "mono" if channels == 1 else "stereo"
    signal = speech_signal(seconds, sample_rate)
    planar = np.repeat(signal[None, :], channels, axis=0)
    out = Path(path)
    with av.open(str(out), "w", format="mp3") as container:
        stream = container.add_stream("libmp3lame", rate=sample_rate, layout=layout)
        stream.bit_rate = 64000 * channels
        frame_size = 1152
        for start in range(0, planar.shape[1], frame_size):
            chunk = np.ascontiguousarray(planar[:, start : start + frame_size])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
            frame.sample_rate = sample_rate
            frame.pts = start
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out


def main() -> None:
    """Write the two example files next to this script."""
    portrait = make_portrait(EXAMPLES_DIR / "portrait.png")
    speech = make_speech_wav(EXAMPLES_DIR / "speech.wav")
    for made in (portrait, speech):
        print(f"wrote {made} ({made.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
