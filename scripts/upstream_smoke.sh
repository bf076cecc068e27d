#!/usr/bin/env bash
# `make smoke-upstream`: the project's engine runs the real upstream InfiniteTalk on CPU.
#
# 1. A CPU environment under .cache/upstream-smoke/, keyed by the hash of its locks
#    (requirements/upstream-smoke*.txt, pyproject.toml and this script), built once:
#    torch's CPU build, torchvision beside it, upstream's dependencies, this project with its [agent] extra.
# 2. Upstream at the pinned commit (scripts/fetch_upstream.sh: UPSTREAM_ARCHIVE or git).
# 3. ffmpeg and ffprobe, which upstream runs (apt-get when missing and allowed).
# 4. pytest tests/upstream_smoke (not with --prepare), with the CPU harness switched on; it leaves
#    .avatar/smoke/{resident,subprocess}.mp4 and summary.json.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
TORCH=torch==2.13.0        # the CPU build; a plain `torch` would pull a CUDA build of GBs
TORCHVISION=torchvision==0.28.0  # the release paired with torch 2.13, installed without deps
LOCK=requirements/upstream-smoke.txt
SUITE=requirements/upstream-smoke-suite.txt
key=$(cat "$LOCK" "$SUITE" pyproject.toml "$0" | sha256sum | cut -c1-16)
venv=.cache/upstream-smoke/venv-$key

if [ ! -f "$venv/.complete" ]; then
    echo "upstream smoke: building $venv (once per lock change)"
    rm -rf .cache/upstream-smoke
    "$PYTHON" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet "$TORCH"
    "$venv/bin/python" -m pip install --quiet --no-deps "$TORCHVISION"
    "$venv/bin/python" -m pip install --quiet -r "$LOCK" -r "$SUITE"
    "$venv/bin/python" -m pip install --quiet -e ".[agent]"
    touch "$venv/.complete"
fi
# The harness switch (tests/upstream_smoke/cpu.py): every interpreter of this environment
# runs it at start-up and it does nothing unless AVATAR_UPSTREAM_SMOKE=1.
site=$("$venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
printf '%s\nimport tests.upstream_smoke.cpu as _smoke; _smoke.activate()\n' "$PWD" \
    > "$site/avatar_upstream_smoke.pth"

upstream=$(scripts/fetch_upstream.sh .cache/upstream/InfiniteTalk)

if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "upstream smoke: installing ffmpeg (upstream runs ffmpeg and ffprobe)"
        apt-get update -qq && apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null
    else
        echo "upstream smoke: upstream needs ffmpeg and ffprobe on PATH; install ffmpeg" >&2
        exit 1
    fi
fi

# `--prepare`: steps 1-3 only, so `make test` builds this environment while its main suite runs.
if [ "${1:-}" = "--prepare" ]; then
    echo "upstream smoke: prepared $venv and $upstream"
    exit 0
fi

AVATAR_UPSTREAM_SMOKE=1 AVATAR_UPSTREAM_DIR="$PWD/$upstream" \
    "$venv/bin/python" -m pytest tests/upstream_smoke -o addopts=-ra -p no:cacheprovider "$@"
