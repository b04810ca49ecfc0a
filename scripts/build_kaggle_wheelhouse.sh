#!/usr/bin/env bash
# Build the offline wheelhouse for the Kaggle notebook (kaggle/arcpipe-submission.ipynb).
#
#   scripts/build_kaggle_wheelhouse.sh [--out DIR] [--python-version 3.11] [--with-numpy]
#                                      [--dry-run] [SPEC ...]
#
# Writes into DIR (default kaggle-wheelhouse/): the arcpipe wheel built from this checkout, and
# wheels of the dependencies Kaggle's image may lack, for Kaggle's Python (3.11) and platform
# (manylinux x86_64), binary wheels only. Upload DIR as a Kaggle Dataset; the notebook installs
# with `pip install --no-index --find-links DIR arcpipe`, which takes from DIR only what is not
# installed already.
#
# The list is explicit (arcpipe's dependencies in pyproject.toml, less what Kaggle certainly has):
#   numba, llvmlite   JIT kernels of the dataset build (llvmlite is numba's backend)
#   orjson            fast JSON for datasets, checkpoints and submissions
#   safetensors       the export's weight file (model.safetensors)
#   rich + markdown-it-py, mdurl, pygments   progress and tables (rich's own dependencies)
#   click             the command line
# Kaggle's image most likely has numba, click, rich and safetensors already; their wheels are only
# a safety net (pip keeps an installed version that satisfies arcpipe's requirement). numpy is on Kaggle and is
# fetched only with --with-numpy. torch is NEVER fetched: Kaggle's CUDA build must stay in place.
# tomli is not needed on Python >= 3.11. SPEC arguments replace a default by name or add one,
# e.g. numba==0.60.0 to match the numpy of Kaggle's image.
#
# --dry-run prints the package list and the commands, touches no network and exits 0.
set -euo pipefail

out="kaggle-wheelhouse"
python_version="3.11"
with_numpy=0
dry_run=0
specs=(numba llvmlite orjson safetensors rich markdown-it-py mdurl pygments click)
extra=()

usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case "$1" in
        --out) out="$2"; shift 2 ;;
        --python-version) python_version="$2"; shift 2 ;;
        --with-numpy) with_numpy=1; shift ;;
        --dry-run) dry_run=1; shift ;;
        -h|--help) usage; exit 0 ;;
        -*) echo "error: unknown option $1" >&2; exit 2 ;;
        *) extra+=("$1"); shift ;;
    esac
done

if [[ $with_numpy -eq 1 ]]; then specs+=(numpy); fi

# A SPEC replaces the default of the same name (the name is what precedes ==, >=, <, ~=, ...).
spec_name() { local n="${1%%[<>=!~;[ ]*}"; echo "${n,,}"; }
for spec in "${extra[@]+"${extra[@]}"}"; do
    name="$(spec_name "$spec")"
    if [[ "$name" == "torch" ]]; then
        echo "error: torch is never put in the wheelhouse (Kaggle's own build is kept)" >&2
        exit 2
    fi
    kept=()
    for s in "${specs[@]}"; do [[ "$(spec_name "$s")" == "$name" ]] || kept+=("$s"); done
    specs=("${kept[@]}" "$spec")
done

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
build_cmd=("$python" -m pip wheel --no-deps "$repo" -w "$out")
download_cmd=(
    "$python" -m pip download --only-binary=:all: --no-deps
    --python-version "$python_version" --implementation cp
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64
    --platform manylinux_2_28_x86_64
    -d "$out" "${specs[@]}"
)

echo "wheelhouse: $out (Python $python_version, manylinux x86_64)"
echo "packages: arcpipe ${specs[*]}"
echo "commands:"
echo "  ${build_cmd[*]}"
echo "  ${download_cmd[*]}"
if [[ $dry_run -eq 1 ]]; then
    exit 0
fi

mkdir -p "$out"
"${build_cmd[@]}"
"${download_cmd[@]}"
echo "done: $(find "$out" -name '*.whl' | wc -l) wheels in $out; upload it as a Kaggle Dataset:"
echo "  kaggle datasets init -p $out   # edit dataset-metadata.json (title, id), then"
echo "  kaggle datasets create -p $out"
