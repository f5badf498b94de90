#!/usr/bin/env bash
# Every GPU test binary on the device machine, compute-sanitizer memcheck over the ADA executors
# (oracle and CPU-comparison tests, the resident decoding steps), the model and the attention op's cases,
# racecheck over the selector's decoding steps and the attention op's cases, the whole-prefill and ADA benchmarks
# (scripts/bench_gpu_prefill.py, scripts/bench_gpu_ada.py) and the host memory and time of loading a
# GPT-J-6B-shaped bf16 checkpoint (scripts/measure_gpu_load.py; BEFORE=DIR also measures the cascade
# binary carried in DIR/bin.tar.xz, an earlier build). Binaries built here and carried as in
# scripts/device_gpu_engine.sh (CARRY/bin.tar.xz made by scripts/pack_device_bins.sh with cascade,
# tests/{cuda_ops,cuda_model,cuda_memory,select_cuda,ada_cuda,ada_oracle,kv_press_cuda,device_weights}_test,
# bench/ada_cuda_bench; PART=linear also bench/linear_cuda_bench).
# PART=models: scripts/bench_gpu_models.py (MODELS, LENGTHS, KERNELS; OUT/models_bench.json keeps earlier parts when OUT is
# carried back in).
# PART=decode: `cascade bench` decode tokens/s, exact against ADA (tau 0.3, the paper's reading), CUDA
# graphs on and off, on stories260K and, where device_frontier.sh joined it in /tmp/smol, SmolLM2-135M
# (bf16, a 512-token prompt or each of DECODE_PROMPTS (256 for stories260K, whose context is 512), 128 decoded tokens, 3 repetitions): OUT/decode.jsonl; with SmolLM2 also its
# CudaModelKernels test.
# PART=decode_bound: scripts/bench_gpu_decode.py (MODELS: one model, DECODE_PROMPTS: comma-separated; SKIP_HF=1: Cascade's rows only).
# Usage (device, repo root): [PART=tests|benches|load|models|decode|decode_bound|linear|profile] [PROFILE_WARM=1] [TESTS="ada_cuda ..."] [CHECKS="memcheck_press ..."] [BEFORE=DIR] bash scripts/device_gpu_suite.sh CARRY_DIR OUT_DIR
set -uo pipefail
CARRY=${1:-.carry-gpu}; OUT=${2:-out/gpu}
B=build-gpu
source "$(dirname "$0")/device_env.sh"
# SmolLM2, where device_frontier.sh joined it in this machine's /tmp: the tests that need it run.
[ -f /tmp/smol/SmolLM2-135M-Instruct.Q4_1.gguf ] && export CASCADE_MODELS=/tmp/smol
# A call brings back at most 8 files: at exit (also when an outer timeout stops the script), the logs
# travel in one archive beside the summary and the models table (which a later PART=models call
# carries back in).
pack() {
  printf '%s\n' "${summary[@]}" > "$OUT/summary.txt"
  local keep=(! -name logs.tar.gz ! -name summary.txt ! -name models_bench.json ! -name decode.jsonl ! -name decode_bench.json
    ! -name linear_bench.json ! -name gemv_sweep.json)
  tar czf /tmp/logs.tar.gz -C "$OUT" --exclude logs.tar.gz --exclude summary.txt --exclude models_bench.json \
    --exclude decode.jsonl --exclude decode_bench.json --exclude linear_bench.json --exclude gemv_sweep.json . && mv /tmp/logs.tar.gz "$OUT/" &&
    find "$OUT" -mindepth 1 -maxdepth 1 "${keep[@]}" -exec rm -rf {} +
}
trap pack EXIT
part=${PART:-all}
wanted() { [ -z "${CHECKS:-}" ] || [[ " $CHECKS " == *" $1 "* ]]; }
if [ "$part" = all ] || [ "$part" = tests ]; then
  # TESTS and CHECKS pick some of the test binaries and sanitizer runs (default: all, most telling first).
  for t in ${TESTS:-ada_cuda cuda_model select_cuda cuda_ops cuda_memory kv_press_cuda ada_oracle device_weights}; do
    run "$t" "$OUT/$t.log" timeout 240 $B/tests/${t}_test
  done
  grep -hE "FAILED|Failure" "$OUT"/*_test.log "$OUT"/cuda_*.log "$OUT"/ada_*.log 2>/dev/null | head -40
  # ADA's resident decoding steps (the device's decision, append and output kernels), with graphs on and off.
  wanted memcheck_ada && run memcheck_ada "$OUT/memcheck_ada.log" timeout 200 compute-sanitizer --tool memcheck --error-exitcode 9 \
    $B/tests/ada_cuda_test --gtest_filter='*AdaCuda*stories260K_F32_tau30*'
  wanted racecheck_select && run racecheck_select "$OUT/racecheck_select.log" timeout 150 compute-sanitizer --tool racecheck --error-exitcode 9 \
    $B/tests/select_cuda_test --gtest_filter='*DecodeSteps*'
  # The attention op's kernels (tile, split, decoding) over the cases of every head size, GQA and cache
  # shape, and the norms (the scalar and the 8-element kernel).
  ops_attention='*AttentionCausalByPositionGqaEveryHeadSize*:*NormWithAndWithoutResidualAdd*'
  wanted memcheck_ops && run memcheck_ops "$OUT/memcheck_ops.log" timeout 200 compute-sanitizer --tool memcheck --error-exitcode 9 \
    $B/tests/cuda_ops_test --gtest_filter="$ops_attention"
  # Racecheck leaves out cuDNN's kernels: its Hopper SDPA (TMA loads, mbarrier waits) reports dozens of
  # shared-memory hazards in every fprop kernel (H100, pip's cuDNN 9), not Cascade's to mend; their
  # outputs pass the op test against the CPU twin.
  wanted racecheck_ops && run racecheck_ops "$OUT/racecheck_ops.log" timeout 200 compute-sanitizer --tool racecheck --error-exitcode 9 \
    --kernel-name-exclude kns=cudnn $B/tests/cuda_ops_test --gtest_filter="$ops_attention"
  # The linear op's cases (cuBLASLt and, for a decoding step's few 16-bit rows, the GEMV kernel).
  wanted memcheck_linear && run memcheck_linear "$OUT/memcheck_linear.log" timeout 200 compute-sanitizer --tool memcheck --error-exitcode 9 \
    $B/tests/cuda_ops_test --gtest_filter='*Linear*'
  wanted memcheck_oracle && run memcheck_oracle "$OUT/memcheck_oracle.log" timeout 200 compute-sanitizer --tool memcheck --error-exitcode 9 \
    $B/tests/ada_oracle_test --gtest_filter='*Gpu*stories260K_tau_0_30*:*Gpu*llama_gqa_tau_0_80_all_proportional*:*Gpu*gptj_tau_0_50_reps*:*Gpu*window*'
  wanted memcheck_press && run memcheck_press "$OUT/memcheck_press.log" timeout 120 compute-sanitizer --tool memcheck --error-exitcode 9 \
    $B/tests/kv_press_cuda_test
  wanted memcheck_model && run memcheck_model "$OUT/memcheck_model.log" timeout 150 compute-sanitizer --tool memcheck --error-exitcode 9 \
    $B/tests/cuda_model_test --gtest_filter='*gptj_F16*:*llama_gqa_F32*:*CudaStories*BF16*:*Graphs*'
fi
if [ "$part" = all ] || [ "$part" = load ]; then
  python3 scripts/measure_gpu_load.py --cascade $B/cascade --reps 3 > "$OUT/load_after.json" 2> "$OUT/load.log"
  cat "$OUT/load_after.json"
  if [ -n "${BEFORE:-}" ]; then
    mkdir -p build-before && unpack_bins "$(ls "$BEFORE"/bin.tar.* | head -1)" build-before
    python3 scripts/measure_gpu_load.py --cascade build-before/cascade --reps 3 > "$OUT/load_before.json" 2>> "$OUT/load.log"
    cat "$OUT/load_before.json"
  fi
fi
if [ "$part" = all ] || [ "$part" = benches ]; then
  PYTHONUNBUFFERED=1 timeout 300 python3 scripts/bench_gpu_prefill.py --cascade $B/cascade --out "$OUT" --big-layers 4 --reps 10 2>&1 | tee "$OUT/bench_prefill.log" | grep -v Warning
  PYTHONUNBUFFERED=1 timeout 240 python3 scripts/bench_gpu_ada.py --bench $B/bench/ada_cuda_bench --out "$OUT" --big-layers 4 2>&1 | tee "$OUT/bench_ada.log" | grep -v Warning
fi
# Whole models at long prompts (not part of all: about six minutes a model): MODELS and LENGTHS choose.
if [ "$part" = models ]; then
  PYTHONUNBUFFERED=1 timeout "${MODELS_TIMEOUT:-560}" python3 scripts/bench_gpu_models.py --ada-bench $B/bench/ada_cuda_bench \
    --out "$OUT" --models "${MODELS:-llama-8b}" --lengths "${LENGTHS:-2048,8192,32768,131072}" \
    --kernels "${KERNELS:-auto,cascade}" 2>&1 |
    tee "$OUT/bench_models.log" | grep -v Warning
fi
# Decoding at the memory bound (scripts/bench_gpu_decode.py): a whole model's decoding against the GPU's
# measured read bandwidth, exact (cascade bench, graphs on and off), ADA (ada_cuda_bench) and HF.
if [ "$part" = decode_bound ]; then
  PYTHONUNBUFFERED=1 timeout "${MODELS_TIMEOUT:-560}" python3 scripts/bench_gpu_decode.py --cascade $B/cascade \
    --ada-bench $B/bench/ada_cuda_bench --out "$OUT" --model "${MODELS:-llama-8b}" --prompts "${DECODE_PROMPTS:-2048,16384}" \
    ${SKIP_HF:+--skip-hf} 2>&1 | tee "$OUT/bench_decode.log" | grep -v Warning
fi
# The decoding step's projections alone and one step's chain of them (bench/linear_cuda_bench.cc): GB/s of
# weights read, to set against PART=decode_bound's read bound on the same GPU.
# Where carried, bench/gemv_sweep_cuda_bench: the GEMV kernel's shapes of block and pieces in flight.
if [ "$part" = linear ]; then
  timeout 200 $B/bench/linear_cuda_bench --benchmark_out="$OUT/linear_bench.json" \
    --benchmark_out_format=json 2>&1 | grep -E "BM_" | head -20
  [ -x $B/bench/gemv_sweep_cuda_bench ] && timeout 200 $B/bench/gemv_sweep_cuda_bench \
    --benchmark_out="$OUT/gemv_sweep.json" --benchmark_out_format=json 2>&1 | grep -E "BM_" | head -50
fi
if [ "$part" = decode ]; then
  models=(models/stories260K/stories260K.bin)
  if [ -n "${CASCADE_MODELS:-}" ]; then
    models+=("$CASCADE_MODELS/SmolLM2-135M-Instruct.Q4_1.gguf")
    # The test that needs SmolLM2 (cuDNN's attention against Cascade's kernel on its shapes) runs here,
    # where the model is joined; PART=tests usually runs before it is.
    run smollm2_kernels "$OUT/smollm2_kernels.log" timeout 120 $B/tests/cuda_model_test --gtest_filter='CudaModelKernels*'
  fi
  for m in "${models[@]}"; do
    # stories260K's context is 512 tokens: a 256-token prompt there; SmolLM2 at each of DECODE_PROMPTS
    # (default 512; at long prompts the attention over the representatives can repay the selection).
    prompts=${DECODE_PROMPTS:-512}; [[ $m == *stories260K* ]] && prompts=256
    for prompt in $prompts; do
      for a in full ada; do
        for g in on off; do
          timeout 120 $B/cascade bench --model "$m" --device cuda --dtype bf16 --attention "$a" --cuda-graphs "$g" \
            --prompt-tokens $prompt --gen-tokens 128 --reps 3 --json 2>> "$OUT/decode.log" |
            python3 -c "import json, sys; r = json.load(sys.stdin); r.update(model='$m', attention='$a', graphs='$g'); print(json.dumps(r))" \
            >> "$OUT/decode.jsonl"
        done
      done
    done
  done
  cat "$OUT/decode.jsonl"
fi
# One decoding step's kernels (ncu, device time of every launch, no replay): PROFILE_MODEL (default
# SmolLM2, joined by device_frontier.sh) bf16, a PROFILE_PROMPT-token prompt (512) and 3 decoded tokens,
# once, graphs off, for each of PROFILE_ATTENTION (full ada); scripts/decode_profile.py splits the
# launches into steps and sums them by kernel. ncu flushes the caches before each launch and fixes the
# SM clock at its base (a small kernel then reads long: instructions, positions and x come from DRAM);
# PROFILE_WARM=1 keeps the caches and the clock as a running step has them.
if [ "$part" = profile ]; then
  m=${PROFILE_MODEL:-${CASCADE_MODELS:?SmolLM2 joined in /tmp/smol first, or PROFILE_MODEL}/SmolLM2-135M-Instruct.Q4_1.gguf}
  for a in ${PROFILE_ATTENTION:-full ada}; do
    timeout 300 ncu ${PROFILE_WARM:+--cache-control none --clock-control none} --metrics gpu__time_duration.sum --csv --page raw --log-file "$OUT/profile_$a.csv" \
      $B/cascade bench --model "$m" --device cuda --dtype bf16 --attention "$a" --cuda-graphs off \
      --prompt-tokens "${PROFILE_PROMPT:-512}" --gen-tokens 3 --reps 1 --json > "$OUT/profile_$a.json" 2> "$OUT/profile_$a.log"
    echo "$a: rc=$? $(wc -l < "$OUT/profile_$a.csv") lines"
  done
fi
printf '%s\n' "${summary[@]}"
