#!/usr/bin/env bash
# The GPU engine on the device machine: its tests, compute-sanitizer memcheck/racecheck
# over them, and the exact-prefill benchmark against HF transformers (scripts/bench_gpu_prefill.py).
# The device image has CUDA, PyTorch and transformers but not the engine's Debian dependencies, so
# the binaries are built elsewhere (CUDA 13.0, sm_90) and carried with their non-CUDA shared
# libraries as CARRY/bin.tar.xz (cascade, tests/cuda_*_test, bench/attention_cuda_bench, lib/). The tests read their fixtures
# from the path compiled in (/work/main/tests/data): the checkout is linked there.
# Usage (device, repo root): [B=BUILD_DIR] [PART=benches|sanitizers] bash scripts/device_gpu_engine.sh CARRY_DIR OUT_DIR
# (one device call has 10 minutes: PART=benches runs the tests and benchmarks, PART=sanitizers the rest).
set -uo pipefail
CARRY=${1:-.carry-cuda-a}; OUT=${2:-out/gpu}
B=${B:-build-cuda-a}
source "$(dirname "$0")/device_env.sh"
if [ "${PART:-all}" != sanitizers ]; then
run ops "$OUT/tests.log" $B/tests/cuda_ops_test
run model "$OUT/model.log" $B/tests/cuda_model_test
run select "$OUT/select.log" $B/tests/select_cuda_test
run ada "$OUT/ada.log" timeout 200 $B/tests/ada_cuda_test
grep -E "measured|FAILED|Failure|error" "$OUT/tests.log" "$OUT/model.log" | head -80
grep -E "FAILED|Failure" "$OUT/select.log" "$OUT/ada.log" | head -20
$B/bench/attention_cuda_bench 2>&1 | tee "$OUT/attention_bench.log" | grep -E "BM_|Run on"
PYTHONUNBUFFERED=1 timeout 330 python3 scripts/bench_gpu_prefill.py --cascade $B/cascade --out "$OUT" --big-layers "${BIG_LAYERS:-4}" --reps 10 2>&1 | tee "$OUT/bench.log" | grep -v Warning
# Decode with and without CUDA graphs: 512-token prompt, 128 tokens decoded one at a time, fp16.
python3 scripts/make_bench_checkpoints.py --big-layers "${BIG_LAYERS:-4}" 2>&1 | grep -v Warning
for m in gpt2-124m gptj-6b opt-6.7b; do
  for g in on off; do
    $B/cascade bench --model /tmp/bench-$m --device cuda --dtype fp16 --cuda-graphs $g --prompt-tokens 512 \
      --gen-tokens 128 --reps 3 --json > "$OUT/decode_${m}_graphs_$g.json" 2>&1
    echo "decode $m graphs $g: $(grep -E '"(decode_tok_s|prefill_s_median)"' "$OUT/decode_${m}_graphs_$g.json" | tr -d '\n ')"
  done
done
fi
if [ "${PART:-all}" != benches ]; then
run memcheck_ops "$OUT/sanitizer.log" timeout 150 compute-sanitizer --tool memcheck --error-exitcode 9 $B/tests/cuda_ops_test
run memcheck_model "$OUT/sanitizer_model.log" timeout 120 compute-sanitizer --tool memcheck --error-exitcode 9 $B/tests/cuda_model_test --gtest_filter='*gptj_F16*:*opt_postln_BF16*:*llama_gqa_F32*:*neox_BF16*:*CudaStories*BF16*'
run racecheck_attention "$OUT/racecheck.log" timeout 120 compute-sanitizer --tool racecheck --error-exitcode 9 $B/tests/cuda_ops_test --gtest_filter='*Attention*F16*:*Norm*BF16*'
run racecheck_select "$OUT/racecheck_select.log" timeout 200 compute-sanitizer --tool racecheck --error-exitcode 9 $B/tests/select_cuda_test --gtest_filter='*SmallForSanitizers*:*DecodeSteps*'
run racecheck_model "$OUT/racecheck_model.log" timeout 250 compute-sanitizer --tool racecheck --error-exitcode 9 $B/tests/cuda_model_test --gtest_filter='*CudaStories*F16*:-*GraphsReplay*'
fi
printf '%s\n' "${summary[@]}" | tee "$OUT/summary.txt"
