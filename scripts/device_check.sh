#!/usr/bin/env bash
# The prepared GPU check (issues 3, 12, 13, 15), a few minutes on one GPU: the GPU tests
# (tests/test_gpu.py), then the training step of the paper ARC configs of TRM and of URM (the
# urm_arc1 network) in bfloat16, compiled and eager, with model FLOP utilisation against the
# H200's dense bf16 peak (989 TFLOP/s; pass another as $1), then boxed boards against the full
# canvas.
#
#   bash scripts/device_check.sh [PEAK_TFLOPS] [MODELS]      MODELS: "trm urm" (default), "urm", ...
#
# Each model's two benchmark runs take up to 200 s, the tests up to 240 s; set
# DEVICE_CHECK_TESTS=0 to skip the tests (e.g. `DEVICE_CHECK_TESTS=0 bash scripts/device_check.sh
# 989 urm` to measure URM alone within one 10-minute device command).
#
# It needs torch with CUDA, numpy, numba, click, rich, orjson and safetensors importable; the
# repository is used in place (no install). On the workplace's device machine orjson (and
# safetensors, if absent) are missing: fetch their wheels into the ignored .whl/ first
# (docs/benchmarks.md has the command) and carry .whl.
# Results (logs and JSON) go to $OUT if set, else runs/device-check.
set -uo pipefail
peak=${1:-989}
models=${2:-"trm urm"}
out=${OUT:-runs/device-check}
mkdir -p "$out"
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --target /tmp/arcpipe-site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/arcpipe-site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$out/gpu.txt"
if [[ "${DEVICE_CHECK_TESTS:-1}" != 0 ]]; then
    timeout 240 python3 -m pytest -m gpu -q -p no:cacheprovider tests/test_gpu.py 2>&1 \
        | tee "$out/gpu-tests.log"
fi
for model in $models; do
    for mode in --compile ""; do
        name=bench_train-$model${mode:+-compiled}
        timeout 200 python3 scripts/bench_train.py --device cuda --models "$model" --hidden 512 \
            --batches 96 192 --steps 5 --peak-tflops "$peak" $mode --json "$out/$name.json" 2>&1 \
            | tee "$out/$name.log"
    done
done
# Boxed boards against the full canvas (issue 12), bfloat16, on the real preset datasets: needs
# the ARC data, e.g. a copy of the shared data in the ignored arc-data/ (carried with the tree).
data=${ARCPIPE_SHARED_DATA:-arc-data}
if [ -d "$data/arc-agi-1" ]; then
    timeout 300 python3 scripts/bench_boxed.py --device cuda --data-root "$data" --train \
        --hidden 512 --batches 96 --steps 3 2>&1 | tee "$out/bench_boxed.log"
else
    echo "no ARC data at $data: boxed-board step times skipped" | tee "$out/bench_boxed.log"
fi
