"""What lets upstream InfiniteTalk run on a CPU, small: test harness only, never production.

Activated in every interpreter of the smoke environment (the pytest process, the resident
model worker, upstream's own subprocess) by a `.pth` file that `scripts/smoke_env.sh`
writes, when `AVATAR_UPSTREAM_SMOKE=1`. Each patch stands in for something that needs
CUDA, or shrinks a model whose size upstream hard-codes; everything else is upstream's own
code at the pinned commit, run unchanged:

- `xformers` and `xfuser` have no CPU build: stub modules (with module specs, because
  importlib looks for them) give the names upstream imports. xformers' attention is
  computed with torch's scaled-dot-product attention, in its own [B, M, H, K] layout.
- `flash_attention` asserts CUDA: it becomes SDPA with the same key-length masking.
- CUDA housekeeping (`current_device`, `empty_cache`, `ipc_collect`, `synchronize`) is a
  no-op, and `InfiniteTalkPipeline`'s `cuda:N` device is the CPU.
- bf16 under CUDA autocast fails on CPU: the config's dtypes are fp32.
- T5, CLIP and the VAE are built by factories upstream looks up at call time: they are
  wrapped to build tiny models (`TINY_*`). The DiT's size is read from its config.json,
  and wav2vec2's from its own config, so `tiny_weights` writes small ones.
- The size buckets (upstream's and this project's copy of them) hold small images.
- A prompt containing `OOM_MARKER` raises CUDA's out-of-memory error inside upstream's
  text encoder, so failure mapping is tested on a real upstream call stack.

torch is imported lazily, by the import hooks, so interpreters that never load upstream
(pip, the resident worker's parent before spawning) do not pay for it.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
import types
from collections.abc import Callable, Sequence
from typing import Any

ENV_FLAG = "AVATAR_UPSTREAM_SMOKE"
OOM_MARKER = "[smoke:oom]"

TINY_T5 = {
    "vocab_size": 128,
    "dim": 32,
    "dim_attn": 32,
    "dim_ffn": 64,
    "num_heads": 2,
    "encoder_layers": 1,
    "decoder_layers": 1,
    "num_buckets": 8,
}
TINY_CLIP = {
    "embed_dim": 16,
    "image_size": 32,
    "patch_size": 2,
    "vision_dim": 1280,
    "vision_mlp_ratio": 0.05,
    "vision_heads": 2,
    "vision_layers": 2,
    "vocab_size": 128,
    "max_text_len": 32,
    "text_dim": 16,
    "text_heads": 2,
    "text_layers": 1,
}
"""Upstream fixes CLIP's width (1280) and tokens (257 = 16 x 16 patches + 1)."""
TINY_VAE = {"dim": 8, "num_res_blocks": 1}
SIDE = 64
"""Video frames are SIDE x SIDE (or 2:3 portraits, SIDE x 1.5 SIDE): 8x8 latents and up."""
TINY_BUCKETS: dict[str, list[tuple[int, int]]] = {
    "0.67": [(SIDE, SIDE * 3 // 2)],
    "1.0": [(SIDE, SIDE)],
    "1.5": [(SIDE * 3 // 2, SIDE)],
}
"""Upstream's bucket format: height/width ratio -> [(height, width)]."""


def activate() -> None:
    """Install the stubs and import hooks; called from the `.pth` file."""
    if os.environ.get(ENV_FLAG) != "1" or any(isinstance(f, AfterImport) for f in sys.meta_path):
        return
    os.environ.setdefault("TORCHDYNAMO_DISABLE", "1")  # multitalk_utils uses @torch.compile
    sys.modules.update(_stub_modules())
    sys.meta_path.insert(
        0,
        AfterImport(
            {
                "torch": _patch_torch,
                "wan.configs": _patch_configs,
                "wan.modules.attention": _patch_attention,
                "wan.modules.multitalk_model": _patch_attention,
                "wan.modules.clip": _patch_clip,
                "wan.modules.t5": _patch_t5,
                "wan.modules.vae": _patch_vae,
                "wan.multitalk": _patch_pipeline,
                "wan.utils.multitalk_utils": _patch_buckets,
                "infinitetalk.upstream.pinned": _patch_project_buckets,
            }
        ),
    )


class AfterImport(importlib.abc.MetaPathFinder):
    """Runs a patch on a module right after its own code has run, before anyone uses it."""

    def __init__(self, patches: dict[str, Callable[[types.ModuleType], None]]) -> None:
        self._patches = patches

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        patch = self._patches.get(fullname)
        if patch is None:
            return None
        for finder in sys.meta_path:
            if isinstance(finder, AfterImport) or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _PatchingLoader(spec.loader, patch)
                return spec
        return None


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, loader: Any, patch: Callable[[types.ModuleType], None]) -> None:
        self._loader = loader
        self._patch = patch

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        self._loader.exec_module(module)
        self._patch(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loader, name)


def _module(name: str, **attributes: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__spec__ = importlib.machinery.ModuleSpec(name, loader=None, is_package=True)
    module.__path__ = []
    module.__dict__.update(attributes)
    return module


def _stub_modules() -> dict[str, types.ModuleType]:
    class BlockDiagonalMask:
        @classmethod
        def from_seqlens(cls, *args: Any, **kwargs: Any) -> None:
            raise NotImplementedError("sequence parallelism needs xformers on a GPU")

    attn_bias = _module("xformers.ops.fmha.attn_bias", BlockDiagonalMask=BlockDiagonalMask)
    fmha = _module("xformers.ops.fmha", attn_bias=attn_bias)
    ops = _module("xformers.ops", fmha=fmha, memory_efficient_attention=_xformers_attention)
    distributed = _module(
        "xfuser.core.distributed",
        get_sequence_parallel_rank=lambda: 0,
        get_sequence_parallel_world_size=lambda: 1,
        get_sp_group=lambda: None,
        get_world_group=lambda: None,
        init_distributed_environment=_needs_gpu,
        initialize_model_parallel=_needs_gpu,
    )
    long_ctx = _module("xfuser.core.long_ctx_attention", xFuserLongContextAttention=_needs_gpu)
    core = _module("xfuser.core", distributed=distributed, long_ctx_attention=long_ctx)
    modules = [
        _module("xformers", ops=ops),
        ops,
        fmha,
        attn_bias,
        _module("xfuser", core=core),
        core,
        distributed,
        long_ctx,
    ]
    return {module.__name__: module for module in modules}


def _needs_gpu(*args: Any, **kwargs: Any) -> None:
    raise NotImplementedError("multi-GPU inference needs xfuser on GPUs")


def _xformers_attention(q: Any, k: Any, v: Any, attn_bias: Any = None, op: Any = None) -> Any:
    """xformers.ops.memory_efficient_attention: [B, M, H, K] in and out."""
    import torch.nn.functional as F

    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
    return out.transpose(1, 2)


def _flash_attention(
    q: Any,
    k: Any,
    v: Any,
    q_lens: Any = None,
    k_lens: Any = None,
    dropout_p: float = 0.0,
    softmax_scale: float | None = None,
    q_scale: float | None = None,
    causal: bool = False,
    window_size: tuple[int, int] = (-1, -1),
    deterministic: bool = False,
    dtype: Any = None,
    version: int | None = None,
) -> Any:
    """upstream's flash_attention ([B, L, N, C]) with SDPA: keys past `k_lens` are masked."""
    import torch
    import torch.nn.functional as F

    if q_scale is not None:
        q = q * q_scale
    mask = None
    if k_lens is not None:
        positions = torch.arange(k.size(1), device=k.device)
        mask = (positions[None, :] < k_lens.to(k.device)[:, None])[:, None, None, :]
    out = F.scaled_dot_product_attention(
        q.transpose(1, 2),
        k.transpose(1, 2).to(q.dtype),
        v.transpose(1, 2).to(q.dtype),
        attn_mask=mask,
        is_causal=causal,
        scale=softmax_scale,
    )
    return out.transpose(1, 2).contiguous()


def _patch_torch(torch: types.ModuleType) -> None:
    cuda = torch.cuda
    cuda.current_device = lambda: 0
    cuda.empty_cache = lambda: None
    cuda.ipc_collect = lambda: None
    cuda.synchronize = lambda device=None: None
    _define_torchvision_ops(torch)


def _define_torchvision_ops(torch: types.ModuleType) -> None:
    """PyPI's torchvision is a CUDA build: on CPU torch its two custom ops must exist first."""
    library = torch.library.Library("torchvision", "DEF")
    library.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    library.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _KEEP.append(library)


_KEEP: list[Any] = []
"""Objects that must live as long as the interpreter (the torchvision op library)."""


def _patch_configs(module: types.ModuleType) -> None:
    import torch

    for config in module.WAN_CONFIGS.values():
        config.param_dtype = config.t5_dtype = config.clip_dtype = torch.float32


def _patch_attention(module: types.ModuleType) -> None:
    module.flash_attention = _flash_attention


def _patch_clip(module: types.ModuleType) -> None:
    _patch_attention(module)
    module.clip_xlm_roberta_vit_h_14 = _with_defaults(module.clip_xlm_roberta_vit_h_14, TINY_CLIP)


def _patch_t5(module: types.ModuleType) -> None:
    module.umt5_xxl = _with_defaults(module.umt5_xxl, TINY_T5)
    original = module.T5EncoderModel.__call__

    def call(self: Any, texts: list[str], device: Any) -> Any:
        if any(OOM_MARKER in text for text in texts):
            import torch

            raise torch.OutOfMemoryError(
                "CUDA out of memory. Tried to allocate 2.00 GiB (smoke harness)"
            )
        return original(self, texts, device)

    module.T5EncoderModel.__call__ = call


def _patch_vae(module: types.ModuleType) -> None:
    module._video_vae = _with_defaults(module._video_vae, TINY_VAE)


def _patch_pipeline(module: types.ModuleType) -> None:
    module.torch = _CpuTorch(module.torch)
    module.torch_gc = _no_cuda_cache


def _patch_buckets(module: types.ModuleType) -> None:
    module.ASPECT_RATIO_627 = module.ASPECT_RATIO_960 = TINY_BUCKETS
    module.torch_gc = _no_cuda_cache


def _patch_project_buckets(module: types.ModuleType) -> None:
    table = tuple((float(ratio), sizes[0]) for ratio, sizes in TINY_BUCKETS.items())
    module._BUCKETS = dict.fromkeys(module._BUCKETS, table)


def _no_cuda_cache() -> None:
    """torch_gc empties CUDA's cache; a full gc.collect per attention call would dominate."""


def _with_defaults(factory: Callable[..., Any], tiny: dict[str, Any]) -> Callable[..., Any]:
    def build(*args: Any, **kwargs: Any) -> Any:
        return factory(*args, **{**kwargs, **tiny})

    return build


class _CpuTorch(types.ModuleType):
    """torch as `wan/multitalk.py` sees it: its `cuda:N` device is the CPU."""

    def __init__(self, torch: types.ModuleType) -> None:
        super().__init__("torch")
        self._torch = torch

    def device(self, spec: Any, *args: Any) -> Any:
        if isinstance(spec, str) and spec.startswith("cuda"):
            spec = "cpu"
        return self._torch.device(spec, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._torch, name)
