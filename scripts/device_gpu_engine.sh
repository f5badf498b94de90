#!/usr/bin/env bash
# The GPU engine on the device machine (issue 5): its tests, compute-sanitizer memcheck/racecheck
# over them, and the exact-prefill benchmark against HF transformers (scripts/bench_gpu_prefill.py).
# The device image has CUDA, PyTorch and transformers but not the engine's Debian dependencies, so
# the binaries are built elsewhere (CUDA 13.0, sm_90) and carried with their non-CUDA shared
# libraries as CARRY/bin.tar.gz (cascade, tests/cuda_*_test, bench/attention_cuda_bench, lib/). The tests read their fixtures
# from the path compiled in (/work/main/tests/data): the checkout is linked there.
# Usage (device, repo root): bash scripts/device_gpu_engine.sh CARRY_DIR OUT_DIR
set -uo pipefail
CARRY=${1:-.carry-cuda-a}; OUT=${2:-out/gpu}
B=build-cuda-a
source "$(dirname "$0")/device_env.sh"
run ops "$OUT/tests.log" $B/tests/cuda_ops_test
run model "$OUT/model.log" $B/tests/cuda_model_test
grep -E "measured|FAILED|Failure|error" "$OUT/tests.log" "$OUT/model.log" | head -80
$B/bench/attention_cuda_bench 2>&1 | tee "$OUT/attention_bench.log" | grep -E "BM_|Run on"
PYTHONUNBUFFERED=1 timeout 330 python3 scripts/bench_gpu_prefill.py --cascade $B/cascade --out "$OUT" --big-layers "${BIG_LAYERS:-4}" --reps 10 2>&1 | tee "$OUT/bench.log" | grep -v Warning
run memcheck_ops "$OUT/sanitizer.log" timeout 150 compute-sanitizer --tool memcheck --error-exitcode 9 $B/tests/cuda_ops_test
run memcheck_model "$OUT/sanitizer_model.log" timeout 120 compute-sanitizer --tool memcheck --error-exitcode 9 $B/tests/cuda_model_test --gtest_filter='*gptj_F16*:*opt_postln_BF16*:*llama_gqa_F32*:*neox_BF16*:*CudaStories*BF16*'
run racecheck_attention "$OUT/racecheck.log" timeout 120 compute-sanitizer --tool racecheck --error-exitcode 9 $B/tests/cuda_ops_test --gtest_filter='*Attention*F16*:*Norm*BF16*'
printf '%s\n' "${summary[@]}" | tee "$OUT/summary.txt"
