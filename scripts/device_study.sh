#!/usr/bin/env bash
# The continuation study (cascade study --protocol continuation) on the device machine, on the CPU
# and on the GPU of the same host, so that the kept fractions and the quality figures of the two
# engines can be compared (f32 on both; bf16 on the GPU as well) and both timed. The cascade binary
# is built elsewhere and carried as in scripts/device_gpu_suite.sh (CARRY/bin.tar.xz from
# scripts/pack_device_bins.sh BUILD CARRY cascade). The text: TEXT, else ../shared's tinyshakespeare,
# else CARRY/input.txt. Also checks that the prefill protocol on the GPU stops before any work with
# check_gpu's message while the GPU lacks ADA's per-layer measurements.
# Usage (device, repo root): [TEXT=FILE] [WINDOWS=N] bash scripts/device_study.sh CARRY_DIR OUT_DIR
set -uo pipefail
CARRY=${1:-.carry-study}; OUT=${2:-out/study-device}
B=build-gpu
source "$(dirname "$0")/device_env.sh"
TEXT=${TEXT:-../shared/data/tinyshakespeare/input.txt}
[ -f "$TEXT" ] || TEXT=$CARRY/input.txt
args=(study --model models/stories260K/stories260K.bin --text "$TEXT" --ctx 512 --windows "${WINDOWS:-8}" --seed 1
      --protocol continuation --continuation 128 --methods full,ada,ada+all-queries,snapkv,streaming,tova,h2o,knorm,random
      --budgets 0.1,0.25,0.5 --tau-sweep 0.5)
run study_cuda_f32 "$OUT/cuda_f32.log" timeout 150 $B/cascade "${args[@]}" --device cuda --dtype f32 --out "$OUT/cuda_f32"
run study_cuda_bf16 "$OUT/cuda_bf16.log" timeout 150 $B/cascade "${args[@]}" --device cuda --out "$OUT/cuda_bf16"
run study_cpu "$OUT/cpu.log" timeout 150 $B/cascade "${args[@]}" --out "$OUT/cpu"
run prefill_cuda "$OUT/prefill_cuda.log" timeout 60 $B/cascade study --model models/stories260K/stories260K.bin \
  --text "$TEXT" --ctx 256 --windows 1 --device cuda --out "$OUT/prefill_cuda"
printf '%s\n' "${summary[@]}" | tee "$OUT/summary.txt"
cat "$OUT/prefill_cuda.log"
