#!/usr/bin/env bash
# Fetch the weight files InfiniteTalk opens, and nothing else, into MODEL_STORAGE_PATH in
# upstream's README layout (the MeiGen-AI/InfiniteTalk model repository alone is ~159 GB;
# a bf16 single-person setup is roughly 95 GB, the fp8-only set roughly 35 GB):
#
#   $MODEL_STORAGE_PATH/Wan2.1-I2V-14B-480P/     base model (Wan-AI/Wan2.1-I2V-14B-480P)
#   $MODEL_STORAGE_PATH/InfiniteTalk/single/     audio weights (MeiGen-AI/InfiniteTalk)
#   $MODEL_STORAGE_PATH/InfiniteTalk/multi/      two-speaker audio weights (same repository)
#   $MODEL_STORAGE_PATH/InfiniteTalk/quant_models/  with --quant: quantised DiT and T5
#   $MODEL_STORAGE_PATH/chinese-wav2vec2-base/   audio encoder (TencentGameMate/...)
#   $MODEL_STORAGE_PATH/lora/                    quality=fast: lightx2v's 4-step LoRA (Kijai/...)
#
# Usage: scripts/download_weights.sh [--quant fp8|int8] [--quant-only] [--dry-run] [DEST]
#   DEST          defaults to $MODEL_STORAGE_PATH, else /runpod-volume/models
#   --quant Q     also fetch the quantised model (for pods with < 100 GiB host RAM)
#   --quant-only  skip the bf16 DiT, T5, InfiniteTalk weights and fast LoRA (needs --quant)
#   --dry-run     print what would be fetched
# Needs Python with huggingface_hub (the agent image has it). Set HF_TOKEN to avoid
# anonymous rate limits. Files already present are skipped, so a broken run can resume.
set -euo pipefail

quant=""
quant_only=0
dry_run=0
dest="${MODEL_STORAGE_PATH:-/runpod-volume/models}"

usage() {
    sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --quant)
            quant="${2:-}"
            shift 2
            ;;
        --quant-only)
            quant_only=1
            shift
            ;;
        --dry-run)
            dry_run=1
            shift
            ;;
        -h | --help) usage 0 ;;
        -*)
            echo "download_weights.sh: unknown option $1" >&2
            usage 2
            ;;
        *)
            dest="$1"
            shift
            ;;
    esac
done

case "$quant" in
    "" | fp8 | int8) ;;
    *)
        echo "download_weights.sh: --quant must be fp8 or int8, not '$quant'" >&2
        exit 2
        ;;
esac
if [ "$quant_only" = 1 ] && [ -z "$quant" ]; then
    echo "download_weights.sh: --quant-only needs --quant fp8 or --quant int8" >&2
    exit 2
fi

python="${PYTHON:-python3}"
if [ "$dry_run" = 0 ] && ! "$python" -c "import huggingface_hub" 2>/dev/null; then
    echo "download_weights.sh: $python has no huggingface_hub; pip install huggingface_hub" >&2
    exit 1
fi

# Each line: repository, revision, destination folder, then the files or patterns to fetch.
plan() {
    local wan="Wan-AI/Wan2.1-I2V-14B-480P main Wan2.1-I2V-14B-480P"
    echo "$wan config.json Wan2.1_VAE.pth models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth google/umt5-xxl/* xlm-roberta-large/*"
    echo "TencentGameMate/chinese-wav2vec2-base main chinese-wav2vec2-base config.json preprocessor_config.json"
    # transformers refuses the .bin checkpoint with torch < 2.6; upstream's README takes
    # the safetensors conversion from this pull request.
    echo "TencentGameMate/chinese-wav2vec2-base refs/pr/1 chinese-wav2vec2-base model.safetensors"
    if [ "$quant_only" = 0 ]; then
        echo "$wan diffusion_pytorch_model-0000?-of-00007.safetensors models_t5_umt5-xxl-enc-bf16.pth"
        echo "MeiGen-AI/InfiniteTalk main InfiniteTalk single/infinitetalk.safetensors"
        # Two speakers (audio2); an agent without them serves one speaker only.
        echo "MeiGen-AI/InfiniteTalk main InfiniteTalk multi/infinitetalk.safetensors"
        # quality=fast (INFINITETALK_FAST_LORA); upstream ignores LoRA on a quantised model.
        echo "Kijai/WanVideo_comfy main lora Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors"
    fi
    if [ -n "$quant" ]; then
        echo "MeiGen-AI/InfiniteTalk main InfiniteTalk quant_models/infinitetalk_single_$quant.* quant_models/t5_$quant.safetensors quant_models/t5_map_$quant.json"
    fi
}

if [ "$dry_run" = 1 ]; then
    set -f
    echo "into $dest:"
    plan | while read -r repo revision folder patterns; do
        echo "  $repo@$revision -> $folder: $patterns"
    done
    exit 0
fi

set -f # the patterns are for the hub, not for this shell to expand
mkdir -p "$dest"
export HF_HUB_OFFLINE=0 # the agent image sets 1 so that nothing is fetched at run time
plan | while read -r repo revision folder patterns; do
    echo "== $repo@$revision -> $dest/$folder: $patterns"
    # shellcheck disable=SC2086 # the patterns are separate arguments
    "$python" - "$repo" "$revision" "$dest/$folder" $patterns <<'PY'
import sys

from huggingface_hub import snapshot_download

repo, revision, local_dir, *patterns = sys.argv[1:]
snapshot_download(repo, revision=revision, local_dir=local_dir, allow_patterns=patterns)
PY
done

set +f
echo "== done; sizes:"
du -sh "$dest"/* 2>/dev/null || true
echo "Check with: avatar-agent probe   (MODEL_STORAGE_PATH=$dest)"
