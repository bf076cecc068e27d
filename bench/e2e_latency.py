"""Submit-to-completed time through the real local stack, against the engine alone.

Baseline (same run): the preview engine called in-process on the same inputs. Reported:
end-to-end seconds, engine-only seconds, their ratio (the pipeline's overhead: upload,
queue, claim, transfers, heartbeats, polling) and the real-time factor (seconds of wall
time per second of audio).

    .venv/bin/python -m bench.e2e_latency [--resolution 720p]
"""

import argparse
import tempfile
import time
from pathlib import Path

import httpx

from bench.stack import API_KEY, ROOT, start_agent, start_edge, stop
from contracts import Resolution
from examples.make_examples import make_speech_wav
from infinitetalk.engine import VideoRequest
from infinitetalk.media.probe import probe_audio
from infinitetalk.preview.engine import PreviewEngine


def engine_only(image: Path, audio: Path, resolution: Resolution, workdir: Path) -> float:
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    PreviewEngine().generate(
        VideoRequest(image, audio, "bench", resolution),
        workdir,
        lambda _p, _s, _e: None,
        lambda: False,
    )
    return time.perf_counter() - started


def end_to_end(url: str, image: Path, audio: Path, resolution: Resolution) -> float:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        started = time.perf_counter()
        with image.open("rb") as img, audio.open("rb") as wav:
            job = client.post(
                "/generate",
                files={"image": img, "audio": wav},
                data={"prompt": "bench", "resolution": resolution.value},
            ).json()
        while True:
            status = client.get(f"/status/{job['job_id']}").json()
            if status["status"] not in ("pending", "processing"):
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
    if status["status"] != "completed":
        raise RuntimeError(f"job ended {status}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--resolution", default="720p", choices=["480p", "720p"])
    resolution = Resolution(parser.parse_args().resolution)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        image = ROOT / "examples" / "portrait.png"
        long_audio = tmp_path / "speech60.wav"
        make_speech_wav(long_audio, seconds=60.0)
        cases = [("example", ROOT / "examples" / "speech.wav"), ("60 s audio", long_audio)]
        edge, url, env = start_edge(tmp_path / "data")
        agent = start_agent(env)
        try:
            end_to_end(url, image, cases[0][1], resolution)  # warm-up: imports, first encode
            print(f"resolution {resolution.value}, preview engine, one agent")
            for name, audio in cases:
                seconds = probe_audio(audio).duration_seconds
                engine = engine_only(image, audio, resolution, tmp_path / f"w-{name}")
                total = end_to_end(url, image, audio, resolution)
                print(
                    f"{name:>11}: audio {seconds:5.1f} s | submit->completed {total:6.2f} s | "
                    f"engine alone {engine:6.2f} s | overhead x{total / engine:.2f} | "
                    f"real-time factor {total / seconds:.2f}"
                )
        finally:
            stop(agent, edge)


if __name__ == "__main__":
    main()
