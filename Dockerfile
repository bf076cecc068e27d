# GPU agent image for RunPod: `avatar-agent run` with upstream InfiniteTalk, model kept warm.
#
#   docker build -t <registry>/infinite-avatar-agent:<tag> .
#
# Weights are not in the image (~80 GB): they live on the RunPod network volume, mounted at
# /runpod-volume, and are fetched once with scripts/download_weights.sh. See
# docs/DEPLOY-RUNPOD.md for the template, the volume layout and the environment.
#
# Versions: upstream documents Python 3.10, torch 2.4.1 (cu121), xformers and flash-attn
# 2.7.4.post1. This project needs Python >= 3.11 and resident mode imports upstream into the
# agent's interpreter, so both share Python 3.11 with torch 2.4.1 (the PyPI wheel is the
# CUDA 12.1 build), xformers 0.0.28.post1 (built for torch 2.4.1) and flash-attn's prebuilt
# cp311/torch2.4 wheel; the rest is pinned in pyproject.toml's [gpu] extra.

FROM nvidia/cuda:12.1.1-runtime-ubuntu22.04

# The upstream commit; the same as UPSTREAM_COMMIT in infinitetalk/upstream.py
# (tests/test_dockerfile.py checks that they agree).
ARG INFINITETALK_COMMIT=0107cd96421b3b1bef7728bde14447dbff7b2db2
ARG FLASH_ATTN_WHEEL=https://github.com/Dao-AILab/flash-attention/releases/download/v2.7.4.post1/flash_attn-2.7.4.post1+cu12torch2.4cxx11abiFALSE-cp311-cp311-linux_x86_64.whl

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# ffmpeg: upstream calls ffmpeg/ffprobe; git: the upstream checkout below.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates ffmpeg git libglib2.0-0 python3.11 python3.11-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3.11 -m venv /opt/venv \
    && pip install --no-cache-dir pip==24.3.1

# Upstream at exactly the pinned commit (a shallow fetch of that one commit).
RUN git init --quiet /opt/InfiniteTalk \
    && git -C /opt/InfiniteTalk remote add origin https://github.com/MeiGen-AI/InfiniteTalk.git \
    && git -C /opt/InfiniteTalk fetch --quiet --depth 1 origin "${INFINITETALK_COMMIT}" \
    && git -C /opt/InfiniteTalk checkout --quiet --detach FETCH_HEAD

# The dependencies first, as their own layer (~10 GB that rarely changes): the project's
# metadata with empty packages, installed with [gpu]; then flash-attn's prebuilt wheel.
# Versions are pinned in pyproject.toml's [gpu] extra and in FLASH_ATTN_WHEEL.
COPY pyproject.toml README.md /src/
# hadolint ignore=DL3013
RUN mkdir -p /src/contracts /src/edge_worker /src/gpu_agent /src/infinitetalk \
        /src/avatar_client /src/migrations \
    && pip install --no-cache-dir "/src[gpu]" \
    && pip install --no-cache-dir "${FLASH_ATTN_WHEEL}"

# The project itself (dependencies are already in place).
COPY contracts /src/contracts
COPY edge_worker /src/edge_worker
COPY gpu_agent /src/gpu_agent
COPY infinitetalk /src/infinitetalk
COPY avatar_client /src/avatar_client
COPY migrations /src/migrations
COPY scripts/download_weights.sh /usr/local/bin/download_weights.sh
RUN pip install --no-cache-dir --no-deps --force-reinstall /src \
    && python -c "import flash_attn, infinitetalk, torch, xformers"

ENV ENGINE=infinitetalk \
    INFINITETALK_MODE=resident \
    INFINITETALK_DIR=/opt/InfiniteTalk \
    MODEL_STORAGE_PATH=/runpod-volume/models \
    WORK_DIR=/tmp/avatar-agent \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1

CMD ["avatar-agent", "run"]
