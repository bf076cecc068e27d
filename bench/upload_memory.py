"""Peak memory of the edge while it receives large uploads.

Baseline: the edge's own peak RSS after start-up and a small request, measured in the same
run. Reported: the peak after each upload and its growth as a fraction of the upload size.
A server that held the body in memory would grow by at least the upload size (ratio >= 1).

    .venv/bin/python bench/upload_memory.py
"""

import tempfile
import wave
from collections.abc import Iterator
from pathlib import Path

import httpx

from bench.stack import API_KEY, ROOT, memory_kib, start_edge, stop

MiB = 1024 * 1024


def wav_of_size(path: Path, size: int) -> Path:
    frames = (size - 44) // 4
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(48000)
        chunk = b"\x01\x00\xff\xff" * (MiB // 4)
        while frames > 0:
            n = min(frames, MiB // 4)
            w.writeframes(chunk[: n * 4])
            frames -= n
    return path


def streamed(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(MiB):
            yield chunk


def upload(url: str, audio: Path) -> int:
    image = (ROOT / "examples" / "portrait.png").read_bytes()
    boundary = "benchboundary"
    head = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nbench\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="p.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + image
        + (
            f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="audio"; '
            'filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\n'
        ).encode()
    )
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body() -> Iterator[bytes]:
        yield head
        yield from streamed(audio)
        yield tail

    response = httpx.post(
        f"{url}/generate",
        content=body(),
        headers={
            "Authorization": f"Bearer {API_KEY}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
        timeout=120,
    )
    return response.status_code


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        edge, url, _ = start_edge(tmp_path / "data")
        try:
            httpx.get(f"{url}/health")
            baseline = memory_kib(edge.pid, "VmHWM")
            print(f"baseline peak RSS: {baseline / 1024:.1f} MiB")
            for size_mib in (40, 60):
                audio = wav_of_size(tmp_path / f"a{size_mib}.wav", size_mib * MiB)
                status = upload(url, audio)
                peak = memory_kib(edge.pid, "VmHWM")
                growth = (peak - baseline) / 1024
                print(
                    f"{size_mib} MiB upload -> HTTP {status}; peak RSS {peak / 1024:.1f} MiB "
                    f"(+{growth:.1f} MiB, {growth / size_mib:.3f} x upload size)"
                )
        finally:
            stop(edge)


if __name__ == "__main__":
    main()
