#!/usr/bin/env bash
# The prepared GPU check: one command of at most 8 minutes (scripts/device_check.py says what it
# measures, in which order, and under which time limits). Figures go to $OUT (else
# runs/device-check): summary.json, summary.md and one log a part.
#
#   bash scripts/device_check.sh [device_check.py options, e.g. --only trm --budget 300]
#
# It needs torch with CUDA, numpy, numba, click, rich, orjson, safetensors and pytest importable
# (the repository is used in place, not installed), and the ARC data in arc-data/ (ignored). Before
# the device call, here: fetch the wheels the device machine lacks into the ignored .whl/ and copy
# the data (docs/benchmarks.md, "On a GPU", has the commands), then carry .whl and arc-data.
set -uo pipefail
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/arcpipe-site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/arcpipe-site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
exec python3 scripts/device_check.py --device cuda --out "${OUT:-runs/device-check}" \
    --data-root "${ARCPIPE_SHARED_DATA:-arc-data}" "$@"
