# GPU agent image for RunPod: `avatar-agent run` with upstream InfiniteTalk, model kept warm.
#
#   docker build -t <registry>/infinite-avatar-agent:<tag> .
#
# All-in-one pod (the edge and its agent in one container, state on the volume, videos in
# R2/S3; README.md "Deploy on one RunPod pod"): the same image, with this start command:
#   sh -c "python -m infinitetalk.upstream.check && exec avatar serve --engine infinitetalk"
#
# Weights are not in the image (~80 GB): they live on the RunPod network volume, mounted at
# /runpod-volume, and are fetched once with scripts/download_weights.sh. See
# docs/DEPLOY-RUNPOD.md for the template, the volume layout and the environment.
#
# Python 3.11, not upstream's 3.10: this project needs >= 3.11, and resident mode imports
# upstream into the agent's own interpreter. Upstream imports on 3.11 except for one line,
# `from inspect import ArgSpec` in wan/multitalk.py (an unused name that 3.11 removed):
# infinitetalk/upstream/compat.py puts it back before upstream is imported (the resident
# worker calls it; subprocess mode gets it through infinitetalk/upstream/site/).
#
# Versions: upstream documents torch 2.4.1 (cu121), xformers and flash-attn 2.7.4.post1. The
# image has torch 2.4.1 (the PyPI wheel is the CUDA 12.1 build), xformers 0.0.28.post1 (built
# for torch 2.4.1), flash-attn's prebuilt cp311/torch2.4 wheel, and everything else upstream
# imports pinned in pyproject.toml's [gpu] extra (diffusers 0.33.1, moviepy 1.0.3, ...).
#
# Self-check: upstream cannot be imported without a CUDA device, and `docker build` has
# none. wan/modules/t5.py evaluates `torch.cuda.current_device()` as a default argument, and
# wan/modules/attention.py imports xfuser.core.distributed, whose xfuser/envs.py (0.4.1)
# calls `torch.cuda.get_device_name()` at import; with no driver both raise "RuntimeError:
# Found no NVIDIA driver". So the build imports what does not need the GPU (the CUDA
# extensions and upstream's riskiest third-party modules), and the container runs the full
# check, `python -m infinitetalk.upstream.check` (wan, wan.multitalk and generate_infinitetalk
# from INFINITETALK_DIR, as the model worker imports them), before the agent starts: a
# broken import stops the pod at once, with the traceback, instead of failing the model load.

FROM nvidia/cuda:12.1.1-runtime-ubuntu22.04

# The upstream commit; the same as UPSTREAM_COMMIT in infinitetalk/upstream/pinned.py
# (tests/test_dockerfile.py checks that they agree).
ARG INFINITETALK_COMMIT=0107cd96421b3b1bef7728bde14447dbff7b2db2
ARG FLASH_ATTN_WHEEL=https://github.com/Dao-AILab/flash-attention/releases/download/v2.7.4.post1/flash_attn-2.7.4.post1+cu12torch2.4cxx11abiFALSE-cp311-cp311-linux_x86_64.whl

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# ffmpeg: upstream calls ffmpeg/ffprobe; git: the upstream checkout below; libgl1 and
# libglib2.0-0: cv2 (xfuser pulls in opencv-python, which needs libGL.so.1, beside the
# headless build; whichever pip unpacks last provides cv2).
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates ffmpeg git libgl1 libglib2.0-0 python3.11 python3.11-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3.11 -m venv /opt/venv \
    && pip install --no-cache-dir pip==24.3.1

# Upstream at exactly the pinned commit (a shallow fetch of that one commit).
RUN git init --quiet /opt/InfiniteTalk \
    && git -C /opt/InfiniteTalk remote add origin https://github.com/MeiGen-AI/InfiniteTalk.git \
    && git -C /opt/InfiniteTalk fetch --quiet --depth 1 origin "${INFINITETALK_COMMIT}" \
    && git -C /opt/InfiniteTalk checkout --quiet --detach FETCH_HEAD

# The dependencies first, as their own layer (~10 GB that rarely changes): the project's
# metadata with empty packages, installed with [agent,gpu] and [edge] (`avatar serve`); then
# flash-attn's prebuilt wheel.
# Versions are pinned in pyproject.toml's [gpu] extra and in FLASH_ATTN_WHEEL.
COPY pyproject.toml README.md /src/
# hadolint ignore=DL3013
RUN mkdir -p /src/contracts /src/edge_worker /src/gpu_agent /src/infinitetalk \
        /src/avatar_client /src/migrations \
    && pip install --no-cache-dir "/src[agent,edge,gpu]" \
    && pip install --no-cache-dir "${FLASH_ATTN_WHEEL}"

# The project itself (dependencies are already in place).
COPY contracts /src/contracts
COPY edge_worker /src/edge_worker
COPY gpu_agent /src/gpu_agent
COPY infinitetalk /src/infinitetalk
COPY avatar_client /src/avatar_client
COPY migrations /src/migrations
COPY scripts/download_weights.sh /usr/local/bin/download_weights.sh
# The GPU-free part of the self-check (see the header): the CUDA extensions load, and so do
# upstream's third-party modules that need native libraries or a pinned API (cv2's libGL,
# decord, soundfile, espeak; moviepy 1.x's moviepy.editor, diffusers >= 0.33's
# no_init_weights). The container's start checks the rest.
RUN pip install --no-cache-dir --no-deps --force-reinstall /src \
    && python -c "import flash_attn, infinitetalk.upstream.engine, torch, xformers.ops" \
    && python -c "import cv2, decord, librosa, moviepy.editor, pyloudnorm, scenedetect, \
soundfile; from misaki import en, espeak; \
from diffusers.models.modeling_utils import ContextManagers, no_init_weights"

ENV ENGINE=infinitetalk \
    INFINITETALK_MODE=resident \
    INFINITETALK_DIR=/opt/InfiniteTalk \
    MODEL_STORAGE_PATH=/runpod-volume/models \
    WORK_DIR=/tmp/avatar-agent \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1

# `avatar serve` only: the edge's port ($PORT, 8787 by default); the agent alone listens on none.
EXPOSE 8787

# The upstream self-check needs the GPU, so it runs here, then the agent replaces the shell.
CMD ["sh", "-c", "python -m infinitetalk.upstream.check && exec avatar-agent run"]
