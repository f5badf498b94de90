#!/usr/bin/env bash
# On the GPU machine: the attention kernels that the engine could run its plain causal attention on,
# timed on one grid (model width 4096, GQA 4:1, head 64/128/256, fp16 and bf16, T = 2048, 8192,
# 32768): the engine's own kernel (bench/attention_cuda_bench, BM_attention_grid), cuDNN's fused
# attention through cudnn-frontend as the engine would call it (cudnn_sdpa_bench.cc, built here
# against the cuDNN that PyTorch's pip packages bring), FlashInfer's Hopper prefill kernel
# (flashinfer_sdpa_bench.cu, built off the GPU by build_flashinfer_probe.sh) and PyTorch's SDPA
# backends (torch_sdpa_bench.py). Writes OUT/{cascade.json,cudnn.jsonl,flashinfer.jsonl,torch.jsonl,
# table.md} and the build time of the cuDNN program (OUT/cudnn_build.txt).
# CARRY holds bin.tar.xz and cudnn-frontend-include.tgz (the include/ folder of the
# nvidia-cudnn-frontend 1.32.0 wheel). Made here with:
#   bash scripts/attention_backends/build_flashinfer_probe.sh build-cuda/attention_probes
#   bash scripts/pack_device_bins.sh build-cuda CARRY bench/attention_cuda_bench \
#     attention_probes/flashinfer_sdpa_bench_bf16 attention_probes/flashinfer_sdpa_bench_f16
# Usage (device, repo root): bash scripts/attention_backends/device_run.sh CARRY OUT
set -uo pipefail
CARRY=$1 OUT=$2 B=build-gpu
here=scripts/attention_backends
source scripts/device_env.sh
CUDNN=$(python3 -c "import nvidia.cudnn as m; print(list(m.__path__)[0])")
fe=$(mktemp -d)
tar xzf "$CARRY/cudnn-frontend-include.tgz" -C "$fe"
t0=$SECONDS
g++ -O2 -std=c++20 -DCUDNN_FRONTEND_SKIP_JSON_LIB -I "$fe/include" -I "$CUDNN/include" -I /usr/local/cuda/include \
  $here/cudnn_sdpa_bench.cc -o "$fe/cudnn_sdpa_bench" -L"$CUDNN/lib" -l:libcudnn.so.9 -L/usr/local/cuda/lib64 \
  -lcudart -lnvrtc -L/usr/local/cuda/lib64/stubs -lcuda > "$OUT/cudnn_build.log" 2>&1
echo "cudnn_sdpa_bench build: rc=$? in $((SECONDS - t0)) s (g++ -O2, one translation unit)" | tee "$OUT/cudnn_build.txt"
export LD_LIBRARY_PATH="$CUDNN/lib:$LD_LIBRARY_PATH"
run cascade "$OUT/cascade.log" timeout 200 $B/bench/attention_cuda_bench --benchmark_filter=BM_attention_grid \
  --benchmark_format=json --benchmark_out="$OUT/cascade.json"
# Built with the device's own g++, whose libstdc++ is newer than the one carried in $B/lib.
run cudnn "$OUT/cudnn.log" timeout 200 env LD_LIBRARY_PATH="$CUDNN/lib:/usr/local/cuda/lib64" \
  sh -c "'$fe/cudnn_sdpa_bench' > '$OUT/cudnn.jsonl'"
run flashinfer "$OUT/flashinfer.log" timeout 200 sh -c \
  "$B/attention_probes/flashinfer_sdpa_bench_bf16 > '$OUT/flashinfer.jsonl' && $B/attention_probes/flashinfer_sdpa_bench_f16 >> '$OUT/flashinfer.jsonl'"
run torch "$OUT/torch.log" timeout 200 sh -c "python3 $here/torch_sdpa_bench.py > '$OUT/torch.jsonl'"
python3 $here/table.py "$OUT" | tee "$OUT/table.md"
printf '%s\n' "${summary[@]}"
# A call brings back at most 8 files: the raw results and logs travel in one archive beside the table.
tar czf /tmp/raw.tar.gz -C "$OUT" --exclude raw.tar.gz --exclude table.md . && mv /tmp/raw.tar.gz "$OUT/" &&
  find "$OUT" -mindepth 1 -maxdepth 1 ! -name raw.tar.gz ! -name table.md -exec rm -rf {} +
