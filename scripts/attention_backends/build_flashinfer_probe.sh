#!/usr/bin/env bash
# Builds flashinfer_sdpa_bench.cu for sm_90a, once per dtype (OUT/flashinfer_sdpa_bench_bf16 and
# _f16), on any machine with nvcc 13: no GPU is needed, so the binaries are built here and carried to
# the GPU machine. DATA is the flashinfer/data folder of the flashinfer-python 0.7.4 wheel; without
# it the wheel is downloaded (pip download --no-deps, 101 MB) and unpacked under OUT. Prints the
# compile time of each binary (three head-size instances each).
# Usage: bash scripts/attention_backends/build_flashinfer_probe.sh OUT [DATA]
set -euo pipefail
out=$1 data=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
if [ -z "$data" ]; then
  python3 -m pip download --no-deps -d "$out/wheel" flashinfer-python==0.7.4 >/dev/null
  unzip -q -o "$out"/wheel/flashinfer_python-0.7.4-*.whl 'flashinfer/data/*' -d "$out"
  data=$out/flashinfer/data
fi
for dt in bf16 f16; do
  t0=$SECONDS
  nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -DCUTE_SM90_EXTENDED_MMA_SHAPES_ENABLED \
    --expt-relaxed-constexpr --expt-extended-lambda -diag-suppress 20012,3357,1444 \
    -DPROBE_BF16=$([ $dt = bf16 ] && echo 1 || echo 0) \
    -I"$data/cccl/libcudacxx/include" -I"$data/cccl/cub" -I"$data/cccl/thrust" -I"$data/include" \
    -I"$data/cutlass/include" -I"$data/cutlass/tools/util/include" \
    "$here/flashinfer_sdpa_bench.cu" -o "$out/flashinfer_sdpa_bench_$dt"
  echo "flashinfer_sdpa_bench_$dt: built in $((SECONDS - t0)) s"
done
