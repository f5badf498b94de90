#!/usr/bin/env bash
# ADA on the GPU on the device machine: tests/ada_cuda_test, compute-sanitizer memcheck over part of
# it, the CLI's --attention ada on cuda, and the ADA prefill/decode benchmark
# (scripts/bench_gpu_ada.py). As scripts/device_gpu_engine.sh: the binaries are built elsewhere (CUDA
# 13.0, sm_90) and carried with their non-CUDA shared libraries as CARRY/bin.tar.xz (cascade,
# tests/ada_cuda_test, tests/cuda_model_test, bench/ada_cuda_bench, lib/); the checkout is linked to
# /work/main, the fixtures' compiled-in path.
# Usage (device, repo root): bash scripts/device_gpu_ada.sh CARRY_DIR OUT_DIR
set -uo pipefail
CARRY=${1:-.carry-ada}; OUT=${2:-out/ada}
B=build-ada
source "$(dirname "$0")/device_env.sh"
run ada_test "$OUT/ada_test.log" timeout 200 $B/tests/ada_cuda_test
grep -E "measured|FAILED|Failure|error" "$OUT/ada_test.log" | head -150
run model_test "$OUT/model_test.log" $B/tests/cuda_model_test --gtest_filter='*Errors*:*llama_F32*:*gptj_BF16*:*CudaStories*F32*'
# The CLI on cuda (the logits file of each engine, compared below) and on the CPU.
M=tests/data/models/llama_gqa
IDS=tests/data/ref/llama_gqa/ids.npy
for dev in cpu cuda; do
  extra=""; [ $dev = cuda ] && extra="--dtype f32"
  $B/cascade logits --model $M --ids $IDS --out "$OUT/logits_$dev.npy" --attention ada --tau 0.8 --device $dev $extra > "$OUT/cli_logits_$dev.log" 2>&1
  echo "cli logits $dev rc=$?" | tee -a "$OUT/cli.txt"
done
$B/cascade perplexity --model models/stories260K/stories260K.bin --text tests/data/text/sample.txt --attention ada --device cuda --dtype f32 >> "$OUT/cli.txt" 2>&1; echo "perplexity cuda rc=$?" >> "$OUT/cli.txt"
$B/cascade perplexity --model models/stories260K/stories260K.bin --text tests/data/text/sample.txt --attention ada --device cpu >> "$OUT/cli.txt" 2>&1; echo "perplexity cpu rc=$?" >> "$OUT/cli.txt"
$B/cascade generate --model models/stories260K/stories260K.bin --prompt "Once upon a time" --max-new-tokens 24 --attention ada --device cuda --dtype f32 >> "$OUT/cli.txt" 2>&1; echo "generate cuda rc=$?" >> "$OUT/cli.txt"
$B/cascade generate --model models/stories260K/stories260K.bin --prompt "Once upon a time" --max-new-tokens 24 --attention ada --device cpu >> "$OUT/cli.txt" 2>&1; echo "generate cpu rc=$?" >> "$OUT/cli.txt"
$B/cascade bench --model models/stories260K/stories260K.bin --attention ada --device cuda --prompt-tokens 200 --gen-tokens 32 --json >> "$OUT/cli.txt" 2>&1; echo "bench cuda rc=$?" >> "$OUT/cli.txt"
for dev in cpu cuda; do  # --ada-queries all through the CLI, compared below
  extra=""; [ $dev = cuda ] && extra="--dtype f32"
  $B/cascade logits --model $M --ids $IDS --out "$OUT/logits_all_$dev.npy" --attention ada --ada-queries all --tau 0.8 --device $dev $extra >> "$OUT/cli.txt" 2>&1
  echo "cli logits --ada-queries all $dev rc=$?" >> "$OUT/cli.txt"
done
for dev in cpu cuda; do  # --proportional through the CLI, compared below
  extra=""; [ $dev = cuda ] && extra="--dtype f32"
  $B/cascade logits --model $M --ids $IDS --out "$OUT/logits_prop_$dev.npy" --attention ada --proportional --tau 0.8 --device $dev $extra >> "$OUT/cli.txt" 2>&1
  echo "cli logits --proportional $dev rc=$?" >> "$OUT/cli.txt"
done
$B/cascade logits --model $M --ids $IDS --out "$OUT/x.npy" --attention ada --select inherit --device cuda >> "$OUT/cli.txt" 2>&1; echo "select inherit on cuda rc=$? (2 expected)" >> "$OUT/cli.txt"
python3 -c "
import numpy as np; a=np.load('$OUT/logits_cpu.npy'); b=np.load('$OUT/logits_cuda.npy')
print('cli logits cuda vs cpu: max|err|/max|cpu| =', float(abs(a-b).max()/abs(a).max()))
a=np.load('$OUT/logits_all_cpu.npy'); b=np.load('$OUT/logits_all_cuda.npy')
print('cli logits --ada-queries all cuda vs cpu: max|err|/max|cpu| =', float(abs(a-b).max()/abs(a).max()))
a=np.load('$OUT/logits_prop_cpu.npy'); b=np.load('$OUT/logits_prop_cuda.npy')
print('cli logits --proportional cuda vs cpu: max|err|/max|cpu| =', float(abs(a-b).max()/abs(a).max()))" >> "$OUT/cli.txt" 2>&1
cat "$OUT/cli.txt"
PYTHONUNBUFFERED=1 timeout 240 python3 scripts/bench_gpu_ada.py --bench $B/bench/ada_cuda_bench --out "$OUT" --big-layers "${BIG_LAYERS:-4}" 2>&1 | tee "$OUT/bench.log" | grep -v Warning
run memcheck_ada "$OUT/sanitizer.log" timeout 120 compute-sanitizer --tool memcheck --error-exitcode 9 $B/tests/ada_cuda_test --gtest_filter='*llama_gqa_F32_tau80*:*gptj_BF16_tau80*:*opt_postln_F16_tau80*:*neox_F32_tau30*:*stories260K_BF16_tau80*:*Errors*'
printf '%s\n' "${summary[@]}" | tee "$OUT/summary.txt"
