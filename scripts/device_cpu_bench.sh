#!/usr/bin/env bash
# CPU speed of the engine against HF transformers on PyTorch, side by side on one machine, for
# BENCHMARKS.md. Expects the cascade and selection_bench binaries (and their shared libraries, for a
# machine without the Debian packages) in BIN_DIR (default .carry-bin). Writes JSON lines to OUT_DIR.
# Usage: scripts/device_cpu_bench.sh [BIN_DIR] [OUT_DIR] [THREADS...]
set -euo pipefail
BIN=${1:-.carry-bin}; OUT=${2:-out/cpu-bench}; shift 2 || true
THREADS=("${@:-4 16}")
mkdir -p "$OUT"
export LD_LIBRARY_PATH="$PWD/$BIN/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
lscpu | grep -E "Model name|^CPU\(s\)" | tee "$OUT/machine.txt"
python3 scripts/make_bench_model.py /tmp/gpt2-124m-random > /dev/null
python3 scripts/llama2c_to_hf.py models/stories260K/stories260K.bin /tmp/stories260K-hf > /dev/null
for t in ${THREADS[@]}; do
  export OMP_NUM_THREADS=$t OPENBLAS_NUM_THREADS=$t
  for spec in "models/stories260K/stories260K.bin /tmp/stories260K-hf 256 128 5" "/tmp/gpt2-124m-random /tmp/gpt2-124m-random 512 32 3"; do
    set -- $spec
    "$BIN/cascade" bench --model "$1" --prompt-tokens "$3" --gen-tokens "$4" --reps "$5" --json | python3 -c "import json,sys; d=json.load(sys.stdin); d['threads']=$t; d['engine']='cascade'; print(json.dumps(d))" >> "$OUT/bench.jsonl"
    python3 scripts/bench_torch.py --model "$2" --prompt-tokens "$3" --gen-tokens "$4" --reps "$5" --threads "$t" --json | python3 -c "import json,sys; d=json.load(sys.stdin); d['threads']=$t; print(json.dumps(d))" >> "$OUT/bench.jsonl"
  done
  "$BIN/selection_bench" --benchmark_format=json --benchmark_out="$OUT/selection_t$t.json" --benchmark_out_format=json > /dev/null
done
cat "$OUT/bench.jsonl"
