"""Client side of `make bench`: status read throughput, submit latency, one large upload.

Status reads come from client processes (one event loop each, keep-alive connections); the
server's CPU time per read is measured too, as the machine may be busy with other work.
"""

import asyncio
import multiprocessing
import statistics
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.stack import cpu_seconds

MiB = 1024 * 1024
BOUNDARY = "benchboundary"


@dataclass(frozen=True)
class Reads:
    per_second: float
    server_cpu_ms: float
    """The server process's CPU time per read: what a read costs whatever else the machine
    runs (the clients included)."""


@dataclass(frozen=True)
class ReadLoad:
    """`processes` x `connections` clients read for `seconds` after `warmup_seconds`."""

    processes: int = 1
    connections: int = 8
    warmup_seconds: float = 1.0
    seconds: float = 4.0


class ReadFailed(RuntimeError):
    pass


async def _get_forever(url: httpx.URL, headers: dict[str, str], counts: list[int]) -> None:
    """GET `url` on one keep-alive HTTP/1.1 connection, counting 200s; anything else raises.

    A bare stream client: httpx spends about a millisecond of client CPU per request, more
    than the servers measured here, so with httpx the bench would measure httpx."""
    reader, writer = await asyncio.open_connection(url.host, url.port)
    lines = [f"GET {url.raw_path.decode()} HTTP/1.1", f"Host: {url.host}:{url.port}"]
    request = "\r\n".join([*lines, *(f"{k}: {v}" for k, v in headers.items()), "", ""]).encode()
    try:
        while True:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status_line, *fields = head.decode("latin-1").split("\r\n")
            length = next(
                int(value)
                for name, _, value in (f.partition(":") for f in fields)
                if name.lower() == "content-length"
            )
            await reader.readexactly(length)
            if status_line.split()[1] != "200":
                raise ReadFailed(f"GET {url}: {status_line}")
            counts[0] += 1
    finally:
        writer.close()


async def _read_for(
    url: str, headers: dict[str, str], connections: int, warmup: float, seconds: float
) -> int:
    counts = [0]
    target = httpx.URL(url)
    tasks = [asyncio.create_task(_get_forever(target, headers, counts)) for _ in range(connections)]
    try:
        await asyncio.sleep(warmup)
        counts[0] = 0
        done, _ = await asyncio.wait(tasks, timeout=seconds, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()
        return counts[0]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _reader(
    url: str, headers: dict[str, str], connections: int, start: float, load: ReadLoad
) -> int:
    time.sleep(max(0.0, start - time.time()))
    return asyncio.run(_read_for(url, headers, connections, load.warmup_seconds, load.seconds))


def status_reads(url: str, headers: dict[str, str], load: ReadLoad, server_pid: int) -> Reads:
    """GETs of `url` per second, all processes together, and the server's CPU per read."""
    start = time.time() + 1.0  # the spawned processes' imports
    args = (url, headers, load.connections, start, load)
    with multiprocessing.get_context("spawn").Pool(load.processes) as pool:
        pending = pool.starmap_async(_reader, [args] * load.processes)
        time.sleep(max(0.0, start + load.warmup_seconds - time.time()))
        cpu_before = cpu_seconds(server_pid)
        done = pending.get()
        cpu = cpu_seconds(server_pid) - cpu_before
    count = sum(done)
    return Reads(per_second=count / load.seconds, server_cpu_ms=cpu * 1000 / max(count, 1))


def submit_p50_ms(
    url: str, headers: dict[str, str], image: bytes, audio: bytes, *, count: int, warmup: int = 5
) -> tuple[float, str]:
    """Median of `count` sequential multipart submits (after `warmup`), and the last job id."""
    timings: list[float] = []
    job_id = ""
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        for i in range(warmup + count):
            started = time.perf_counter()
            response = client.post(
                "/generate",
                files={"image": ("p.png", image, "image/png"), "audio": ("a.wav", audio)},
                data={"prompt": "bench"},
            )
            elapsed = time.perf_counter() - started
            response.raise_for_status()
            job_id = response.json()["job_id"]
            if i >= warmup:
                timings.append(elapsed * 1000)
    return statistics.median(timings), job_id


def padded_png(png: bytes, size: int) -> bytes:
    """A PNG of exactly `size` bytes: the servers judge formats by the first bytes only."""
    return png + b"\0" * (size - len(png))


def silent_wav(path: Path, size: int) -> Path:
    """A complete 48 kHz stereo 16-bit WAV of exactly `size` bytes (header included)."""
    data = size - 44
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        *(b"RIFF", size - 8, b"WAVE", b"fmt ", 16, 1, 2, 48000, 48000 * 4, 4, 16),
        *(b"data", data),
    )
    with path.open("wb") as f:
        f.write(header)
        f.truncate(size)
    return path


def multipart_body(image: bytes, audio: Path) -> Iterator[bytes]:
    """prompt, image and audio as a streamed multipart body (the audio read 1 MiB at a time)."""
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nbench\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="image"; filename="p.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()
    yield image
    yield (
        f'\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name="audio"; '
        'filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\n'
    ).encode()
    with audio.open("rb") as f:
        while chunk := f.read(MiB):
            yield chunk
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def upload_seconds(url: str, headers: dict[str, str], image: bytes, audio: Path) -> float:
    """One streamed multipart submit of `image` and `audio`; it must be accepted."""
    started = time.perf_counter()
    response = httpx.post(
        f"{url}/generate",
        content=multipart_body(image, audio),
        headers={**headers, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        timeout=300,
    )
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed
