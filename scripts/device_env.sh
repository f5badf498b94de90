# Sourced by the device scripts (device_gpu_engine.sh, device_gpu_ada.sh) with CARRY, OUT and B set:
# unpacks the binaries built elsewhere (CARRY/bin.tar.xz: cascade, tests, benches, lib/ with their
# non-CUDA shared libraries, since the device image lacks the Debian packages) into B, links the
# checkout to /work/main (the fixtures' compiled-in path), finds CUDA's and pip's cuBLAS and pip's
# cuDNN (CASCADE_CUDNN_LIBRARY: the engine's cuDNN attention opens it), notes the GPU, and defines run NAME LOG COMMAND... which logs a command and keeps a one-line summary of it.
mkdir -p "$OUT" "$B"
[ -e /work/main ] || { mkdir -p /work && ln -s "$PWD" /work/main; }
# CARRY/bin.tar.xz (scripts/pack_device_bins.sh; an older bin.tar.gz too), unpacked by Python's tarfile:
# the device image is not known to have xz.
unpack_bins() {  # archive, folder
  python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter="fully_trusted")' "$1" "$2"
}
unpack_bins "$(ls "$CARRY"/bin.tar.* | head -1)" "$B"
CUBLAS_PIP=$(python3 -c "import nvidia.cublas as m; print(list(m.__path__)[0] + '/lib')" 2>/dev/null || true)
export LD_LIBRARY_PATH="$PWD/$B/lib:/usr/local/cuda/lib64:${CUBLAS_PIP}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
CUDNN_PIP=$(python3 -c "import nvidia.cudnn as m; print(list(m.__path__)[0] + '/lib/libcudnn.so.9')" 2>/dev/null || true)
[ -n "$CUDNN_PIP" ] && [ -e "$CUDNN_PIP" ] && export CASCADE_CUDNN_LIBRARY="$CUDNN_PIP"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.draw,temperature.gpu --format=csv | tee "$OUT/gpu.txt"
date -u | tee -a "$OUT/gpu.txt"
echo "cuDNN for the engine: ${CASCADE_CUDNN_LIBRARY:-none found}" | tee -a "$OUT/gpu.txt"
summary=()
run() {  # name, log, command...
  local name=$1 log=$2; shift 2
  local t0=$SECONDS
  "$@" > "$log" 2>&1
  local rc=$?
  summary+=("$name: rc=$rc ($((SECONDS - t0)) s) $(grep -E '^\[  (PASSED|FAILED)|ERROR SUMMARY|RACECHECK SUMMARY' "$log" | tr '\n' ' ')")
  echo "${summary[-1]}" >> "$OUT/summary_so_far.txt"  # survives a call cut short
}
