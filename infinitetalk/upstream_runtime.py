"""Upstream's model, loaded once in the worker process and run for each job.

This is the only module that imports torch and upstream's Python code, and it runs only
inside the model worker (`resident_child`). It does per job what upstream's
`generate_infinitetalk.py` does, with upstream's own functions: 16 kHz loudness-normalised
audio (`audio_prepare_single`), the wav2vec embedding (`get_embedding`), then
`InfiniteTalkPipeline.generate_infinitetalk` in streaming mode. Progress comes from a tqdm
hook: the pipeline's `tqdm` is replaced by a wrapper that reports each finished step.
"""

import gc
import importlib
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType, SimpleNamespace
from typing import Any

from infinitetalk import upstream
from infinitetalk.postprocess import write_frames
from infinitetalk.resident_protocol import Done, Encoding, JobEvent, RunJob, Step, WorkerConfig

Emit = Callable[[JobEvent], None]
APG_MOMENTUM = -0.75
APG_NORM_THRESHOLD = 55.0
"""Upstream's CLI defaults; APG stays off, as in every README run."""


class UpstreamRuntime:
    """The pipeline, the audio encoder and the hook; `load` once, `generate` per job."""

    def __init__(self, config: WorkerConfig) -> None:
        self._config = config
        self._torch: ModuleType | None = None
        self._script: ModuleType | None = None
        self._pipeline: Any = None
        self._audio: tuple[Any, Any] | None = None
        self._emit: Emit = lambda event: None
        self._bars = 0

    def load(self) -> None:
        """Import upstream from its checkout and load every model (minutes, once)."""
        config = self._config
        sys.path.insert(0, str(config.upstream_dir))
        import torch
        import wan
        import wan.multitalk
        from wan.configs import WAN_CONFIGS

        script = importlib.import_module(upstream.SCRIPT.removesuffix(".py"))
        pipeline = wan.InfiniteTalkPipeline(
            config=WAN_CONFIGS[upstream.TASK],
            checkpoint_dir=str(config.ckpt_dir),
            quant_dir=str(config.quant_dir) if config.quant_dir else None,
            device_id=0,
            rank=0,
            t5_fsdp=False,
            dit_fsdp=False,
            use_usp=False,
            t5_cpu=False,
            lora_dir=[str(p) for p in config.lora] or None,
            lora_scales=list(config.lora_scales) or None,
            quant=config.quantization,
            dit_path=None,
            infinitetalk_dir=str(config.infinitetalk_weights),
        )
        if config.num_persistent_param_in_dit is not None:
            pipeline.vram_management = True
            pipeline.enable_vram_management(
                num_persistent_param_in_dit=config.num_persistent_param_in_dit
            )
        self._audio = script.custom_init("cpu", str(config.wav2vec_dir))
        wan.multitalk.tqdm = self._progress_bar
        self._torch, self._script, self._pipeline = torch, script, pipeline

    def generate(self, job: RunJob, emit: Emit) -> Done:
        """One video: embed the audio, sample every chunk, write the frames to `output_path`."""
        assert self._torch is not None and self._script is not None and self._audio is not None
        config = self._config
        os.chdir(job.workdir)  # upstream writes temporary files by relative name
        speech = self._script.audio_prepare_single(str(job.audio_path))
        embedding = self._script.get_embedding(speech, *self._audio)
        embedding_path = job.workdir / "audio_embedding.pt"
        self._torch.save(embedding, str(embedding_path))
        self._emit, self._bars = emit, 0
        video = self._pipeline.generate_infinitetalk(
            {
                "prompt": job.prompt,
                "cond_video": str(job.image_path),
                "cond_audio": {"person1": str(embedding_path)},
            },
            size_buckget=job.size,
            motion_frame=upstream.MOTION_FRAMES,
            frame_num=upstream.CLIP_FRAMES,
            shift=job.sample_shift,
            sampling_steps=config.sample_steps,
            text_guide_scale=config.text_guide_scale,
            audio_guide_scale=config.audio_guide_scale,
            seed=job.seed,
            offload_model=config.offload_model,
            max_frames_num=job.max_frame_num,
            color_correction_strength=config.color_correction_strength,
            extra_args=SimpleNamespace(
                size=job.size,
                use_teacache=config.teacache,
                teacache_thresh=config.teacache_threshold,
                use_apg=False,
                apg_momentum=APG_MOMENTUM,
                apg_norm_threshold=APG_NORM_THRESHOLD,
            ),
        )
        frames, _, _ = write_frames(
            video, job.output_path, lambda done, total: emit(Encoding(done, total))
        )
        return Done(path=job.output_path, frames=frames)

    def recover(self) -> None:
        """Give back what a failed or cancelled job held, so the next one has the memory."""
        gc.collect()
        if self._torch is not None:
            try:
                self._torch.cuda.empty_cache()
            except Exception:  # a broken context fails here too; cuda_healthy says so
                return

    def cuda_healthy(self) -> bool:
        """False once the CUDA context is broken (sticky errors fail every later call)."""
        if self._torch is None:
            return True
        try:
            self._torch.cuda.synchronize()
        except Exception:
            return False
        return True

    def _progress_bar(self, iterable: Iterable[Any], *args: Any, **kwargs: Any) -> Iterator[Any]:
        """Stands in for upstream's tqdm bar: one per chunk, a Step after each sampling step."""
        chunk = self._bars
        self._bars += 1
        emit = self._emit

        def steps() -> Iterator[Any]:
            for done, item in enumerate(iterable, start=1):
                yield item
                emit(Step(chunk=chunk, done=done))

        return steps()
