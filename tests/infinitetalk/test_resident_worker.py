"""The model worker's side, run in this process against the stand-in checkout.

`UpstreamRuntime` imports the stand-in `torch`, `wan` and `generate_infinitetalk` exactly as
it imports upstream's in the worker; `serve` and `run_job` talk over a real pipe.
"""

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from multiprocessing import Pipe
from pathlib import Path
from types import SimpleNamespace

import pytest

from infinitetalk.media.probe import probe_video
from infinitetalk.settings import InfiniteTalkSettings, MemoryProfile, Quantization
from infinitetalk.upstream.child import (
    CANCEL_SIGNAL,
    Interrupts,
    JobCancelled,
    StdoutToLog,
    TailHandler,
    run_job,
    serve,
)
from infinitetalk.upstream.profiles import ResolvedProfile
from infinitetalk.upstream.protocol import (
    Cancelled,
    Done,
    Encoding,
    Failed,
    LoadFailed,
    Ready,
    RunJob,
    Shutdown,
    Step,
    WorkerConfig,
)
from infinitetalk.upstream.resident_mode import worker_config
from infinitetalk.upstream.runtime import UpstreamRuntime, _parameter
from tests.fixtures.standin import STANDIN_DIR

STEPS = 3


@pytest.fixture
def config(standin_models: Path, monkeypatch: pytest.MonkeyPatch) -> WorkerConfig:
    monkeypatch.setenv("STANDIN_STEP_SECONDS", "0")
    settings = InfiniteTalkSettings(
        upstream_dir=STANDIN_DIR, model_storage_path=standin_models, sample_steps=STEPS
    )
    profile = ResolvedProfile(
        name=MemoryProfile.LOWVRAM,
        num_persistent_param_in_dit=0,
        offload_model=True,
        quantization=Quantization.NONE,
        reasons=(),
    )
    return worker_config(settings, profile, fast=True)


@pytest.fixture
def runtime(config: WorkerConfig, standin_imports: None) -> UpstreamRuntime:
    loaded = UpstreamRuntime(config)
    loaded.load()
    return loaded


def a_job(
    portrait: Path,
    audio: Path,
    workdir: Path,
    prompt: str = "hi",
    number: int = 1,
    *,
    fast: bool = False,
) -> RunJob:
    workdir.mkdir(parents=True, exist_ok=True)
    return RunJob(
        image_path=portrait,
        audio_path=audio,
        prompt=prompt,
        size="infinitetalk-480",
        sample_shift=7.0,
        sample_steps=2 if fast else STEPS,
        text_guide_scale=1.0 if fast else 5.0,
        audio_guide_scale=2.0 if fast else 4.0,
        fast_lora=fast,
        seed=1,
        max_frame_num=176,
        workdir=workdir,
        output_path=workdir / "frames.mp4",
        number=number,
    )


def test_one_load_serves_jobs_with_a_step_per_sampling_step(
    runtime: UpstreamRuntime, portrait_png: Path, speech_7s: Path, tmp_path: Path
) -> None:
    for index in range(2):  # the same pipeline, job after job
        events: list[object] = []
        job = a_job(portrait_png, speech_7s, tmp_path / f"job{index}")
        done = runtime.generate(job, events.append)
        assert done == Done(path=job.output_path, frames=175)
        steps = [(e.chunk, e.done) for e in events if isinstance(e, Step)]
        assert steps == [(chunk, step) for chunk in range(3) for step in range(1, STEPS + 1)]
        encodes = [e for e in events if isinstance(e, Encoding)]
        assert encodes[-1] == Encoding(175, 175)
        info = probe_video(job.output_path)
        assert (info.width, info.height, info.frame_count) == (576, 704, 175)
        assert (job.workdir / "audio_embedding.pt").is_file()
    assert runtime.cuda_healthy()


def sampled(job: RunJob) -> dict[str, float]:
    return json.loads((job.workdir / "standin_sampling.json").read_text())


def test_the_fast_lora_is_merged_for_fast_jobs_only_and_switched_only_when_needed(
    runtime: UpstreamRuntime,
    portrait_png: Path,
    speech_4s: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    alphas, steps = [], []
    with caplog.at_level(logging.INFO, logger="infinitetalk.upstream.runtime"):
        for index, fast in enumerate([False, True, True, False, False, True]):
            events: list[object] = []
            job = a_job(portrait_png, speech_4s, tmp_path / f"job{index}", fast=fast)
            runtime.generate(job, events.append)
            alphas.append(sampled(job)["lora_alpha"])
            steps.append(max(e.done for e in events if isinstance(e, Step)))
    assert alphas == [0, 1, 1, 0, 0, 1]  # merged, and taken out exactly
    assert steps == [STEPS, 2, 2, STEPS, STEPS, 2]
    assert sampled(job) == {
        "steps": 2,
        "text_guide_scale": 1.0,
        "audio_guide_scale": 2.0,
        "lora_alpha": 1.0,
    }
    switches = [r.getMessage() for r in caplog.records if "fast LoRA" in r.getMessage()]
    assert switches == [
        "fast LoRA merged into the DiT",
        "fast LoRA taken out of the DiT",
        "fast LoRA merged into the DiT",
    ]
    assert runtime.cuda_healthy()


def test_a_switch_that_stops_half_way_gets_the_worker_reloaded(
    config: WorkerConfig,
    standin_imports: None,
    portrait_png: Path,
    speech_4s: Path,
    tmp_path: Path,
) -> None:
    lora = tmp_path / "fast.safetensors"
    lora.write_bytes(b"{}")
    runtime = UpstreamRuntime(WorkerConfig(**{**vars(config), "fast_lora": lora}))
    runtime.load()
    lora.unlink()  # the volume lost it: the merge fails before it changed anything
    job = a_job(portrait_png, speech_4s, tmp_path / "a", fast=True)
    end = run_job(job, lambda event: None, runtime, Interrupts(FakeTarget()), TailHandler())
    assert isinstance(end, Failed) and end.fatal  # the weights can no longer be trusted
    with pytest.raises(RuntimeError, match="stopped half-way"):
        runtime.generate(a_job(portrait_png, speech_4s, tmp_path / "b"), lambda event: None)


def test_a_worker_without_the_fast_lora_refuses_a_fast_job(
    config: WorkerConfig,
    standin_imports: None,
    portrait_png: Path,
    speech_4s: Path,
    tmp_path: Path,
) -> None:
    runtime = UpstreamRuntime(WorkerConfig(**{**vars(config), "fast_lora": None}))
    runtime.load()
    job = a_job(portrait_png, speech_4s, tmp_path / "a", fast=True)
    with pytest.raises(RuntimeError, match="loaded without the fast LoRA"):
        runtime.generate(job, lambda event: None)
    assert runtime.cuda_healthy()
    standard = a_job(portrait_png, speech_4s, tmp_path / "b")
    runtime.generate(standard, lambda event: None)
    assert sampled(standard)["lora_alpha"] == 0


def test_lora_weights_are_found_inside_vram_management_wrappers() -> None:
    norm = SimpleNamespace(weight="norm weight")
    wrapped = SimpleNamespace(module=norm)  # upstream's AutoWrappedModule
    linear = SimpleNamespace(weight="q weight")  # AutoWrappedLinear keeps its weight
    block = SimpleNamespace(norm3=wrapped, self_attn=SimpleNamespace(q=linear))
    model = SimpleNamespace(blocks=[block])
    assert _parameter(model, "blocks.0.norm3.weight") == "norm weight"
    assert _parameter(model, "blocks.0.self_attn.q.weight") == "q weight"
    with pytest.raises(AttributeError):
        _parameter(model, "blocks.0.norm3.bias")


def test_a_missing_weight_fails_the_load(
    config: WorkerConfig, standin_imports: None, tmp_path: Path
) -> None:
    broken = UpstreamRuntime(
        WorkerConfig(**{**vars(config), "infinitetalk_weights": tmp_path / "x"})
    )
    with pytest.raises(FileNotFoundError):
        broken.load()


def test_a_broken_cuda_context_is_noticed(
    runtime: UpstreamRuntime, portrait_png: Path, speech_7s: Path, tmp_path: Path
) -> None:
    job = a_job(portrait_png, speech_7s, tmp_path, "x [standin:cuda-broken]")
    with pytest.raises(RuntimeError, match="illegal memory access"):
        runtime.generate(job, lambda event: None)
    runtime.recover()  # empty_cache fails too; recover swallows it
    assert not runtime.cuda_healthy()


class FakeTarget:
    def __init__(self) -> None:
        self.value = 0


def test_interrupts_cancel_only_the_named_job_and_never_mid_message() -> None:
    target = FakeTarget()
    interrupts = Interrupts(target)
    interrupts.handle(CANCEL_SIGNAL, None)  # idle: nothing happens
    with interrupts.job(1):
        target.value = 7  # a late cancel of an older job
        interrupts.handle(CANCEL_SIGNAL, None)
        with pytest.raises(JobCancelled), interrupts.paused():
            target.value = 1
            interrupts.handle(CANCEL_SIGNAL, None)  # deferred while sending...
        # ...and raised as soon as the message is out
    target.value = 2
    with pytest.raises(JobCancelled), interrupts.job(2):
        pass  # a cancel that arrived before the job started


class Worker:
    """`serve` on a thread with the agent's end of a real pipe."""

    def __init__(self, runtime: object, interrupts: Interrupts) -> None:
        self.conn, child = Pipe(duplex=True)
        self.tail = TailHandler()
        self.status: list[int] = []
        self.thread = threading.Thread(
            target=lambda: self.status.append(serve(child, runtime, interrupts, self.tail)),  # type: ignore[arg-type]
            daemon=True,
        )
        self.thread.start()

    def until_end(self) -> tuple[list[object], object]:
        events = []
        while True:
            message = self.conn.recv()
            if isinstance(message, Step | Encoding):
                events.append(message)
            else:
                return events, message

    def exit_status(self) -> int:
        self.thread.join(10)
        return self.status[0]


@pytest.fixture
def worker(runtime: UpstreamRuntime) -> Iterator[Worker]:
    running = Worker(runtime, Interrupts(FakeTarget()))
    assert isinstance(running.conn.recv(), Ready)
    yield running
    running.conn.close()


def test_serve_runs_jobs_until_shutdown(
    worker: Worker, portrait_png: Path, speech_4s: Path, tmp_path: Path
) -> None:
    worker.conn.send(a_job(portrait_png, speech_4s, tmp_path))
    events, end = worker.until_end()
    assert isinstance(end, Done) and len(events) > 2 * STEPS
    worker.conn.send(Shutdown())
    assert worker.exit_status() == 0


def test_out_of_memory_leaves_the_model_usable(
    worker: Worker, portrait_png: Path, speech_4s: Path, tmp_path: Path
) -> None:
    worker.conn.send(a_job(portrait_png, speech_4s, tmp_path / "a", "x [standin:oom]"))
    events, end = worker.until_end()
    assert isinstance(end, Failed)
    assert (end.code, end.fatal) == ("GPU_OUT_OF_MEMORY", False)
    assert end.message == "the GPU ran out of memory for this video; 480p needs less"
    assert any("CUDA out of memory" in line for line in end.log_tail)
    assert [(e.chunk, e.done) for e in events] == [(0, 1), (0, 2)]
    worker.conn.send(a_job(portrait_png, speech_4s, tmp_path / "b"))
    assert isinstance(worker.until_end()[1], Done)


def test_a_crash_is_a_generation_failure_and_broken_cuda_ends_the_worker(
    worker: Worker, portrait_png: Path, speech_4s: Path, tmp_path: Path
) -> None:
    worker.conn.send(a_job(portrait_png, speech_4s, tmp_path / "a", "x [standin:crash]"))
    crash = worker.until_end()[1]
    assert isinstance(crash, Failed) and (crash.code, crash.fatal) == ("GENERATION_FAILED", False)
    assert crash.message == "InfiniteTalk failed"
    assert any("stand-in failure inside the sampler" in line for line in crash.log_tail)
    worker.conn.send(a_job(portrait_png, speech_4s, tmp_path / "b", "x [standin:cuda-broken]"))
    broken = worker.until_end()[1]
    assert isinstance(broken, Failed) and broken.fatal
    assert worker.exit_status() == 1


def test_the_worker_exits_when_the_agent_goes_away(worker: Worker) -> None:
    worker.conn.close()
    assert worker.exit_status() == 0


def test_a_failed_load_is_reported_once(tmp_path: Path) -> None:
    class Broken:
        def load(self) -> None:
            raise ImportError("flash_attn is not installed")

    running = Worker(Broken(), Interrupts(FakeTarget()))
    message = running.conn.recv()
    assert isinstance(message, LoadFailed)
    assert message.message == "ImportError: flash_attn is not installed"
    assert running.exit_status() == 1


def test_the_cancel_signal_stops_upstream_where_it_is(
    runtime: UpstreamRuntime, portrait_png: Path, speech_4s: Path, tmp_path: Path
) -> None:
    target = FakeTarget()
    interrupts = Interrupts(target)
    previous = signal.signal(CANCEL_SIGNAL, interrupts.handle)

    def cancel_soon() -> None:
        time.sleep(0.3)
        target.value = 5
        os.kill(os.getpid(), CANCEL_SIGNAL)

    threading.Thread(target=cancel_soon, daemon=True).start()
    sent: list[object] = []
    started = time.monotonic()
    try:
        job = a_job(portrait_png, speech_4s, tmp_path, "x [standin:hang]", number=5)
        end = run_job(job, sent.append, runtime, interrupts, TailHandler())
    finally:
        signal.signal(CANCEL_SIGNAL, previous)
    assert isinstance(end, Cancelled)
    assert time.monotonic() - started < 3
    assert [type(e) for e in sent] == [Step, Step]


def test_upstreams_prints_become_log_lines() -> None:
    tail = TailHandler()
    logger = SimpleNamespace(log=lambda level, line: tail.lines.append(line))
    out = StdoutToLog(logger)  # type: ignore[arg-type]
    assert out.write("No conversion needed.\nteacache") == 30
    out.write("_init done\n")
    assert list(tail.lines) == ["No conversion needed.", "teacache_init done"]
