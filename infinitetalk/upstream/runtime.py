"""Upstream's model, loaded once in the worker process and run for each job.

This is the only module that imports torch and upstream's Python code, and it runs only
inside the model worker (`child`). It does per job what upstream's
`generate_infinitetalk.py` does, with upstream's own functions: 16 kHz loudness-normalised
audio (`audio_prepare_single`), the wav2vec embedding (`get_embedding`), then
`InfiniteTalkPipeline.generate_infinitetalk` in streaming mode. Progress comes from a tqdm
hook: the pipeline's `tqdm` is replaced by a wrapper that reports each finished step.
Each job brings its own sampling; a fast job has the distilled LoRA merged into the DiT with
upstream's `WanLoraWrapper`, and the next standard job has it taken out again. A two-speaker
job embeds both tracks as upstream's script does (`audio_prepare_multi`) and runs on the
multi audio weights, copied over the single ones (and back for the next one-speaker job).
"""

import gc
import importlib
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType, SimpleNamespace
from typing import Any

from infinitetalk.upstream import compat, pinned
from infinitetalk.upstream.postprocess import write_frames
from infinitetalk.upstream.protocol import Done, Encoding, JobEvent, RunJob, Step, WorkerConfig

log = logging.getLogger(__name__)

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
        self._lora: Any = None
        self._lora_name = ""
        self._lora_on: bool | None = False
        """Whether the fast LoRA is merged; None after a switch that stopped half-way."""
        self._multi_on: bool | None = False
        """Whether the multi audio weights are in; None after a swap that stopped half-way."""

    def load(self) -> None:
        """Import upstream from its checkout and load every model (minutes, once)."""
        config = self._config
        compat.install()
        sys.path.insert(0, str(config.upstream_dir))
        import torch
        import wan
        import wan.multitalk
        from wan.configs import WAN_CONFIGS

        script = importlib.import_module(pinned.SCRIPT.removesuffix(".py"))
        pipeline = wan.InfiniteTalkPipeline(
            config=WAN_CONFIGS[pinned.TASK],
            checkpoint_dir=str(config.ckpt_dir),
            quant_dir=str(config.quant_dir) if config.quant_dir else None,
            device_id=0,
            rank=0,
            t5_fsdp=False,
            dit_fsdp=False,
            use_usp=False,
            t5_cpu=False,
            lora_dir=None,  # the fast LoRA is merged per job, see _use_lora
            lora_scales=None,
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
        if config.fast_lora is not None:
            from wan.wan_lora import WanLoraWrapper

            self._lora = WanLoraWrapper(pipeline.model)
            self._lora.get_parameter_by_name = _parameter
            self._lora_name = self._lora.load_lora(str(config.fast_lora))

    def generate(self, job: RunJob, emit: Emit) -> Done:
        """One video: embed the audio, sample every chunk, write the frames to `output_path`."""
        assert self._torch is not None and self._script is not None and self._audio is not None
        config = self._config
        os.chdir(job.workdir)  # upstream writes temporary files by relative name
        if job.person2_path is None:
            speeches = [self._script.audio_prepare_single(str(job.audio_path))]
        else:
            first, second, _ = self._script.audio_prepare_multi(
                str(job.audio_path), str(job.person2_path), job.audio_type
            )
            speeches = [first, second]
        cond_audio = {}
        for index, speech in enumerate(speeches, start=1):
            embedding = self._script.get_embedding(speech, *self._audio)
            suffix = "" if index == 1 else f"_{index}"
            embedding_path = job.workdir / f"audio_embedding{suffix}.pt"
            self._torch.save(embedding, str(embedding_path))
            cond_audio[f"person{index}"] = str(embedding_path)
        inputs: dict[str, Any] = {
            "prompt": job.prompt,
            "cond_video": str(job.image_path),
            "cond_audio": cond_audio,
        }
        if job.person2_path is not None:
            inputs.update(audio_type=job.audio_type, bbox=job.bbox)
        self._use_audio_weights(job.person2_path is not None)
        self._use_lora(job.fast_lora)
        self._emit, self._bars = emit, 0
        video = self._pipeline.generate_infinitetalk(
            inputs,
            size_buckget=job.size,
            motion_frame=pinned.MOTION_FRAMES,
            frame_num=pinned.CLIP_FRAMES,
            shift=job.sample_shift,
            sampling_steps=job.sample_steps,
            text_guide_scale=job.text_guide_scale,
            audio_guide_scale=job.audio_guide_scale,
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

    def _use_lora(self, on: bool) -> None:
        """Merge the fast LoRA into the DiT for a fast job, or take it out for a standard one.

        Upstream merges a LoRA into the weights (`param.add_(delta)`), so applying it again
        with the opposite scale takes it out, up to bf16 rounding; it only happens when the
        quality changes from one job to the next. A switch that stops half-way (an error, a
        cancel) leaves the weights unknown: `cuda_healthy` then says no, so the worker exits
        and the agent loads a fresh one.
        """
        if self._lora_on is None:
            raise RuntimeError("a LoRA switch stopped half-way; the model must be reloaded")
        if on is self._lora_on:
            return
        if self._lora is None:
            raise RuntimeError("a fast job reached a worker loaded without the fast LoRA")
        pipeline, scale = self._pipeline, self._config.fast_lora_scale
        self._lora_on = None
        self._lora.apply_lora(
            self._lora_name,
            scale if on else -scale,
            param_dtype=pipeline.param_dtype,
            device=pipeline.device,
        )
        self._lora_on = on
        log.info(
            "fast LoRA merged into the DiT" if on else "fast LoRA taken out of the DiT",
            extra={"lora": self._lora_name, "scale": scale},
        )

    def _use_audio_weights(self, multi: bool) -> None:
        """Copy the multi (or back the single) audio weights over the DiT's. Upstream loads
        them as part of the DiT's state dict; both files hold the same tensors, so a job
        with the other speaker count only rewrites those (no reload). A copy that stops
        half-way leaves the weights unknown, and the worker is replaced (`cuda_healthy`)."""
        if self._multi_on is None:
            raise RuntimeError("an audio-weights swap stopped half-way; the model must be reloaded")
        if multi is self._multi_on:
            return
        config = self._config
        if multi and config.multi_weights is None:
            raise RuntimeError("a two-speaker job reached a worker loaded without multi weights")
        load_file = importlib.import_module("safetensors.torch").load_file
        path = config.multi_weights if multi else config.infinitetalk_weights
        torch = self._torch
        assert torch is not None
        self._multi_on = None
        with torch.no_grad():
            for name, tensor in load_file(str(path)).items():
                _parameter(self._pipeline.model, name).data.copy_(tensor)
        self._multi_on = multi
        log.info("audio weights swapped", extra={"weights": "multi" if multi else "single"})

    def recover(self) -> None:
        """Give back what a failed or cancelled job held, so the next one has the memory."""
        gc.collect()
        if self._torch is not None:
            try:
                self._torch.cuda.empty_cache()
            except Exception:  # a broken context fails here too; cuda_healthy says so
                return

    def cuda_healthy(self) -> bool:
        """False once the CUDA context is broken (sticky errors fail every later call) or
        the weights are unknown (a LoRA switch stopped half-way)."""
        if self._lora_on is None or self._multi_on is None:
            return False
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


def _parameter(model: Any, name: str) -> Any:
    """`WanLoraWrapper.get_parameter_by_name`, also through upstream's VRAM-management wrappers.

    Upstream merges a LoRA before `enable_vram_management` wraps the DiT's norms and
    convolutions in `AutoWrappedModule`; a switch per job comes after, when a name such as
    `blocks.0.norm3.weight` sits one `.module` deeper.
    """
    current = model
    for part in name.split("."):
        if part.isdigit():
            current = current[int(part)]
            continue
        if not hasattr(current, part) and hasattr(current, "module"):
            current = current.module
        current = getattr(current, part)
    return current
