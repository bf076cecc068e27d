#!/usr/bin/env bash
# What a lent GPU machine can do for this project, as one JSON object on stdout, in under
# ~9 minutes whatever happens (every step runs under `timeout`):
#
#   nvidia_smi  the GPUs, driver and CUDA version nvidia-smi reports
#   python      the interpreter used, and whether this project imports in it
#   host        `python -m infinitetalk.upstream.gpu_probe`: torch and its CUDA build, the GPU as
#               torch sees it, host RAM (error says why when torch is missing)
#   weights     whether every weight file is at MODEL_STORAGE_PATH; if not, exactly what
#               is missing (the engine's own preflight, through bench/gpu.py)
#   bench       bench/gpu.py's JSON: with the weights and the upstream checkout, first a
#               parallel job's two segments stitched (`seams`: the frames on both sides of
#               the seam as PNGs in $OUT/seams/), then a dubbing job and two-speaker jobs in
#               both modes (`inputs`: their MP4s in $OUT/inputs/; the two-speaker ones
#               skipped, saying why, without the multi weights), then model load time,
#               GPU-seconds per video second and peak VRAM within the time left; without
#               them it returns in seconds
#
#   bash scripts/device_check.sh
#
# Files (bench-gpu.json, bench-gpu.log, device-check.json, seams/, inputs/) go to $OUT, or a
# temporary folder.
# Environment: DEVICE_CHECK_SECONDS (total budget, default 510), PYTHON (an interpreter with
# this project installed; default .venv/bin/python, then python3; when neither imports the
# project, a throwaway venv that sees the system's packages gets `pip install .` from PyPI),
# and the engine's own settings (MODEL_STORAGE_PATH, INFINITETALK_DIR, ...).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
TOTAL=${DEVICE_CHECK_SECONDS:-510}
OUT_DIR=${OUT:-$(mktemp -d)}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT_DIR"

left() { echo $((TOTAL - SECONDS)); }

# Seconds a step may take: at most $1, and never into the last $2 seconds of the budget.
limit() {
    local l=$(($(left) - $2))
    echo $((l < $1 ? l : $1))
}

# A JSON string (nvidia-smi's and pip's messages are not under our control).
json_str() {
    local s
    s=$(printf '%s' "$1" | tr -d '\000-\010\013\014\016-\037')
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/\\n}
    s=${s//$'\r'/\\r}
    s=${s//$'\t'/\\t}
    printf '"%s"' "$s"
}

json_num() {
    local v
    v=$(printf '%s' "$1" | tr -d ' ')
    if [[ $v =~ ^[0-9]+(\.[0-9]+)?$ ]]; then printf '%s' "$v"; else printf 'null'; fi
}

nvidia_smi_facts() {
    if ! command -v nvidia-smi >/dev/null 2>&1; then
        printf '{"available": false, "error": "nvidia-smi not found"}'
        return
    fi
    local rows cuda gpus="" index total used driver name
    # name last: `read` gives the last variable the rest of the line, commas included
    if ! rows=$(timeout 30 nvidia-smi \
        --query-gpu=index,memory.total,memory.used,driver_version,name \
        --format=csv,noheader,nounits 2>&1); then
        printf '{"available": false, "error": %s}' "$(json_str "$rows")"
        return
    fi
    cuda=$(timeout 30 nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9.]*\).*/\1/p')
    while IFS=', ' read -r index total used driver name; do
        [[ -n $index ]] || continue
        gpus+="${gpus:+, }{\"index\": $(json_num "$index"), \"name\": $(json_str "$name"),"
        gpus+=" \"memory_total_mib\": $(json_num "$total"),"
        gpus+=" \"memory_used_mib\": $(json_num "$used"),"
        gpus+=" \"driver_version\": $(json_str "$driver")}"
    done <<<"$rows"
    printf '{"available": true, "cuda_version": %s, "gpus": [%s]}' \
        "$(json_str "${cuda%%$'\n'*}")" "$gpus"
}

# PY: the first interpreter that imports the project and the bench, else a bootstrapped one.
PY=""
PY_NOTE=""
pick_python() {
    local candidate base="" seconds
    for candidate in "${PYTHON:-}" "$ROOT/.venv/bin/python" python3; do
        if [[ -z $candidate ]] || ! command -v "$candidate" >/dev/null 2>&1; then
            continue
        fi
        [[ -n $base ]] || base=$candidate
        if timeout 60 "$candidate" -c "import bench.gpu" >/dev/null 2>&1; then
            PY=$candidate
            PY_NOTE="imports the project"
            return
        fi
    done
    if [[ -z $base ]]; then
        PY_NOTE="no Python interpreter found"
        return
    fi
    seconds=$(limit 240 150)
    if ((seconds < 30)); then
        PY_NOTE="$base does not import the project and no time is left to install it"
        return
    fi
    # shellcheck disable=SC2016 # the inner shell expands its own arguments
    if timeout "$seconds" bash -c '"$1" -m venv --system-site-packages "$2" &&
        "$2/bin/python" -m pip install --quiet --disable-pip-version-check "$3"' \
        _ "$base" "$WORK/venv" "$ROOT" >"$WORK/pip.log" 2>&1; then
        PY="$WORK/venv/bin/python"
        PY_NOTE="$base does not import the project: installed it into a venv (pip install .)"
    else
        PY_NOTE="$base does not import the project; pip install . failed: $(tail -n 3 "$WORK/pip.log")"
    fi
}

python_facts() {
    if [[ -z $PY ]]; then
        printf '{"executable": null, "project": false, "note": %s}' "$(json_str "$PY_NOTE")"
        return
    fi
    local version
    version=$("$PY" -c 'import platform; print(platform.python_version())' 2>&1)
    printf '{"executable": %s, "version": %s, "project": true, "note": %s}' \
        "$(json_str "$PY")" "$(json_str "$version")" "$(json_str "$PY_NOTE")"
}

# torch, its CUDA build and the GPU as the engine's own probe sees them.
host_facts() {
    local host seconds
    seconds=$(limit 120 90)
    if [[ -n $PY ]] && ((seconds > 0)) &&
        host=$(timeout "$seconds" "$PY" -m infinitetalk.upstream.gpu_probe 2>/dev/null) &&
        [[ $host == \{* ]]; then
        printf '%s' "$host"
    else
        printf 'null'
    fi
}

# bench/gpu.py: its preflight lists what is missing in seconds; with everything there it
# measures within the time left (its own --budget-seconds, then `timeout` as a backstop).
BENCH_EXIT=null
run_bench() {
    local seconds
    seconds=$(limit 100000 20)
    [[ -n $PY ]] && ((seconds >= 60)) || return
    timeout -k 15 "$seconds" "$PY" -m bench.gpu --budget-seconds "$((seconds - 30))" \
        --out "$OUT_DIR/bench-gpu.json" --seams-dir "$OUT_DIR/seams" \
        --inputs-dir "$OUT_DIR/inputs" \
        >"$WORK/bench.json" 2>"$OUT_DIR/bench-gpu.log"
    BENCH_EXIT=$?
}

# The bench's report: what it printed or, if it was killed first, what it had saved after
# its last run (kept as bench-report.json for weights_facts); null if neither is valid JSON.
bench_facts() {
    local report
    for report in "$WORK/bench.json" "$OUT_DIR/bench-gpu.json"; do
        if [[ -s $report ]] &&
            "$PY" -c 'import json, sys; json.load(open(sys.argv[1]))' "$report" 2>/dev/null; then
            cp "$report" "$WORK/bench-report.json"
            cat "$report"
            return
        fi
    done
    printf 'null'
}

# From the bench's preflight: are the weights there, and what exactly is missing.
WEIGHTS_PY='
import json, os, sys
from infinitetalk.settings import InfiniteTalkSettings
bench = json.load(open(sys.argv[1]))
weights = (bench.get("probe") or {}).get("weights") or []
print(json.dumps({
    "model_storage_path": str(InfiniteTalkSettings.from_env(os.environ).model_storage_path),
    "present": bool(weights) and all(w["size_bytes"] is not None for w in weights),
    "missing": bench["missing"],
}))
'
weights_facts() {
    local weights why
    if [[ -z $PY ]]; then
        why="no Python with this project: $PY_NOTE"
    elif [[ ! -s $WORK/bench-report.json ]]; then
        why="bench/gpu.py gave no report (exit $BENCH_EXIT, see bench-gpu.log)"
    elif weights=$("$PY" -c "$WEIGHTS_PY" "$WORK/bench-report.json" 2>&1); then
        printf '%s' "$weights"
        return
    else
        why=$weights
    fi
    printf '{"model_storage_path": %s, "present": null, "error": %s}' \
        "$(json_str "${MODEL_STORAGE_PATH:-}")" "$(json_str "not checked: $why")"
}

pick_python
NVIDIA=$(nvidia_smi_facts)
PYTHON_FACTS=$(python_facts)
HOST=$(host_facts)
run_bench
BENCH=$(bench_facts)
WEIGHTS=$(weights_facts)
printf '{"elapsed_seconds": %s, "nvidia_smi": %s, "python": %s, "host": %s, "weights": %s, "bench_exit": %s, "bench": %s, "files": %s}\n' \
    "$SECONDS" "$NVIDIA" "$PYTHON_FACTS" "$HOST" "$WEIGHTS" "$BENCH_EXIT" "$BENCH" \
    "$(json_str "$OUT_DIR")" | tee "$OUT_DIR/device-check.json"
[[ $BENCH_EXIT == 0 ]] # exit status: 0 only when the bench measured every run
