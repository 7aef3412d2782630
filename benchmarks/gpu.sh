#!/usr/bin/env bash
# Train the book's three families on full MNIST on a GPU and write
# benchmarks/gpu_results.json (read by the Performance page). Under 8 minutes.
#
#   bash benchmarks/gpu.sh            # on a machine with a CUDA build of JAX
#   bash benchmarks/gpu.sh --smoke    # tiny models on the CPU, to check the script
#
# MNIST must be on disk (the machine may be offline): Keras' cache
# ~/.keras/datasets/mnist.npz, or MNIST_PATH=/path/to/mnist.npz (or a folder
# with the four IDX files).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}  # e.g. PYTHON=.venv/bin/python
SMOKE=()
OUT=benchmarks/gpu_results.json
if [[ "${1:-}" == "--smoke" ]]; then
    SMOKE=(--smoke)
    OUT=benchmarks/out/gpu_results_smoke.json
fi
export KERAS_BACKEND=jax
MNIST_ARGS=()
if [[ ${#SMOKE[@]} -eq 0 ]]; then
    MNIST_PATH=${MNIST_PATH:-$HOME/.keras/datasets/mnist.npz}
    if [[ ! -e "$MNIST_PATH" ]]; then
        echo "gpu.sh: no MNIST at $MNIST_PATH. Copy mnist.npz (Keras' layout) there" \
             "or set MNIST_PATH; this script never downloads." >&2
        exit 2
    fi
    MNIST_ARGS=(--mnist "$MNIST_PATH")
    platform=$("$PYTHON" -c 'import jax; print(jax.default_backend())')
    if [[ "$platform" != "gpu" ]]; then
        echo "gpu.sh: JAX's backend is '$platform', not 'gpu': install a CUDA build" \
             "of JAX (pip install -U 'jax[cuda12]'), or run with --smoke." >&2
        exit 2
    fi
    "$PYTHON" -c 'import jax; print("device:", jax.devices()[0].device_kind)'
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for family in gan vae rnn; do   # one process a family: its own peak memory
    timeout 150 "$PYTHON" -m benchmarks.peers.gpu --family "$family" "${SMOKE[@]}" \
        "${MNIST_ARGS[@]}" --budget-seconds 100 --out "$work/$family.json" \
        || echo "gpu.sh: $family failed or ran past 150 s; it is left out" >&2
done
mkdir -p "$(dirname "$OUT")"
shopt -s nullglob
"$PYTHON" -m benchmarks.peers.gpu gather "$OUT" "$work"/*.json
echo "gpu.sh: wrote $OUT"
