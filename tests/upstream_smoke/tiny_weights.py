"""Tiny randomly initialised weights in upstream's file layout, made on the fly.

Every file the engine's preflight asks for (`infinitetalk.upstream.weights.required_weights`) and
upstream opens is written under one MODEL_STORAGE_PATH: the DiT as upstream's seven
shards plus the InfiniteTalk audio weights, T5, CLIP and the VAE as `.pth` state dicts,
wav2vec2 and both tokenizers as Hugging Face folders, a distilled-style LoRA for the fast
profile, and the int8 DiT and T5 quantised with optimum-quanto the way upstream reads
them back (`requantize` with a quantisation map). The architectures are upstream's own,
built by upstream's classes with the sizes of `cpu.TINY_*`; nothing is downloaded.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from infinitetalk.upstream import compat
from tests.upstream_smoke.cpu import TINY_T5, TINY_VAE

DIT_CONFIG = {
    "model_type": "i2v",
    "text_len": 512,
    "in_dim": 36,
    "dim": 64,
    "ffn_dim": 64,
    "freq_dim": 256,
    "text_dim": TINY_T5["dim"],
    "out_dim": 16,
    "num_heads": 2,
    "num_layers": 2,
    "eps": 1e-06,
    "intermediate_dim": 32,
    "output_dim": 32,
    "context_tokens": 4,
}
"""The DiT's size comes from config.json; the audio adapter keeps wav2vec2's 12 x 768 input."""
WORDS = [
    "a",
    "the",
    "presenter",
    "talking",
    "to",
    "camera",
    "person",
    "speaks",
    "calmly",
    "in",
    "studio",
]
LORA_RANK = 4
SEED = 1234


def make_models(root: Path, upstream_dir: Path) -> Path:
    """Write every weight file under `root` (a MODEL_STORAGE_PATH) and return it."""
    import torch

    compat.install()
    sys.path.insert(0, str(upstream_dir))
    torch.manual_seed(SEED)
    wan = root / "Wan2.1-I2V-14B-480P"
    wan.mkdir(parents=True)
    (wan / "config.json").write_text(json.dumps(DIT_CONFIG))
    dit = _dit()
    _save_dit(dit, wan, root / "InfiniteTalk" / "single" / "infinitetalk.safetensors")
    _multi(dit, root / "InfiniteTalk" / "multi" / "infinitetalk.safetensors")
    t5 = _t5()
    torch.save(t5.state_dict(), wan / "models_t5_umt5-xxl-enc-bf16.pth")
    torch.save(
        _clip().state_dict(), wan / "models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth"
    )
    torch.save(_vae().state_dict(), wan / "Wan2.1_VAE.pth")
    _tokenizer(wan / "google" / "umt5-xxl", TINY_T5["vocab_size"])
    _tokenizer(wan / "xlm-roberta-large", TINY_T5["vocab_size"])
    _wav2vec(root / "chinese-wav2vec2-base")
    _lora(dit, root / "lora" / "fast_lora.safetensors")
    _quantised(dit, t5, root / "InfiniteTalk" / "quant_models", "int8")
    return root


def _dit() -> Any:
    """Upstream zero-initialises the output head (training starts as the identity): random
    values instead, so that the DiT, its LoRA and the sampler change the video."""
    import torch
    from wan.modules.multitalk_model import WanModel

    model = WanModel(**DIT_CONFIG).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            if not parameter.any():
                parameter.normal_(0.0, 0.05)
    return model


def _save_dit(model: Any, wan: Path, audio_weights: Path) -> None:
    """Seven shards as upstream names them; the audio adapter goes to InfiniteTalk's file."""
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    audio = {k: v for k, v in state.items() if "audio" in k}
    rest = sorted(k for k in state if k not in audio)
    shards = 7
    for index in range(shards):
        keys = rest[index::shards]
        name = f"diffusion_pytorch_model-{index + 1:05d}-of-{shards:05d}.safetensors"
        save_file({k: state[k] for k in keys}, str(wan / name))
    audio_weights.parent.mkdir(parents=True)
    save_file(audio, str(audio_weights))


def _multi(model: Any, path: Path) -> None:
    """The two-speaker audio weights: the same tensors as the single ones, other values,
    so a job on the wrong weights would show."""
    import torch
    from safetensors.torch import save_file

    audio = {k: v for k, v in model.state_dict().items() if "audio" in k}
    generator = torch.Generator().manual_seed(SEED + 1)
    path.parent.mkdir(parents=True)
    save_file(
        {
            k: (v + torch.randn(v.shape, generator=generator, dtype=v.dtype) * 0.05).contiguous()
            for k, v in audio.items()
        },
        str(path),
    )


def _t5() -> Any:
    from wan.modules.t5 import umt5_xxl

    return umt5_xxl(encoder_only=True, return_tokenizer=False)


def _clip() -> Any:
    from wan.modules.clip import clip_xlm_roberta_vit_h_14

    model, _ = clip_xlm_roberta_vit_h_14(pretrained=False, return_transforms=True)
    return model


def _vae() -> Any:
    from wan.modules.vae import WanVAE_

    return WanVAE_(
        **TINY_VAE,
        z_dim=16,
        dim_mult=[1, 2, 4, 4],
        attn_scales=[],
        temperal_downsample=[False, True, True],
        dropout=0.0,
    )


def _tokenizer(folder: Path, vocab_size: int) -> None:
    """A word-level tokenizer (no hub): ids stay below the tiny encoder's vocabulary."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(["<pad>", "</s>", "<unk>", *WORDS])}
    assert len(vocab) <= vocab_size
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    ).save_pretrained(str(folder))


def _wav2vec(folder: Path) -> None:
    """Upstream fixes 12 layers x 768 (the audio adapter's input); the rest is small."""
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    config = Wav2Vec2Config(
        hidden_size=768,
        num_hidden_layers=12,
        num_attention_heads=2,
        intermediate_size=32,
        conv_dim=(32,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=16,
    )
    Wav2Vec2Model(config).save_pretrained(str(folder), safe_serialization=True)
    Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, return_attention_mask=False
    ).save_pretrained(str(folder))


def _lora(model: Any, path: Path) -> None:
    """Keys as distilled LoRAs name them (`diffusion_model.<layer>.lora_down/up.weight`)."""
    import torch
    from safetensors.torch import save_file

    tensors = {}
    for name, module in model.named_modules():
        if (
            isinstance(module, torch.nn.Linear)
            and name.startswith("blocks.")
            and "audio" not in name
        ):
            out_features, in_features = module.weight.shape
            prefix = f"diffusion_model.{name}"
            tensors[f"{prefix}.lora_down.weight"] = torch.randn(LORA_RANK, in_features) * 0.01
            tensors[f"{prefix}.lora_up.weight"] = torch.randn(out_features, LORA_RANK) * 0.01
    path.parent.mkdir(parents=True)
    save_file(tensors, str(path))


def _quantised(dit: Any, t5: Any, folder: Path, quant: str) -> None:
    """What upstream's `--quant_dir` names: a quantised DiT and T5, each with its map."""
    import copy

    from optimum.quanto import freeze, qint8, quantization_map, quantize
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    for model, weights, qmap in (
        (dit, f"infinitetalk_single_{quant}.safetensors", f"infinitetalk_single_{quant}.json"),
        (t5, f"t5_{quant}.safetensors", f"t5_map_{quant}.json"),
    ):
        quantised = copy.deepcopy(model)
        quantize(quantised, weights=qint8)
        freeze(quantised)
        save_file(
            {k: v.contiguous() for k, v in quantised.state_dict().items()}, str(folder / weights)
        )
        (folder / qmap).write_text(json.dumps(quantization_map(quantised)))
