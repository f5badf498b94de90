#!/usr/bin/env bash
# Packs binaries built here for the device machine, whose image lacks the Debian libraries they link
# (OpenBLAS, libgomp, Google Benchmark, a newer libstdc++): CARRY/bin.tar.xz holds the given files of
# BUILD at their relative paths plus lib/ with every non-CUDA, non-libc shared library they need.
# scripts/device_env.sh unpacks it there. CARRY must be an ignored directory (.git/info/exclude).
# xz, not gzip: a call carries at most 64 MiB with the repository, and the binaries are a third of gzip's
# size in xz (36 MB against 11 MB for the GPU suite's).
# Usage: bash scripts/pack_device_bins.sh BUILD CARRY cascade tests/cuda_ops_test bench/ada_cuda_bench ...
set -euo pipefail
build=$1 carry=$2
shift 2
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/lib" "$carry"
for f in "$@"; do
  mkdir -p "$stage/$(dirname "$f")"
  cp "$build/$f" "$stage/$f"
  ldd "$build/$f" | awk '/=> \// {print $3}' | grep -Ev '/(libc|libm|libdl|libpthread|librt|ld-linux[^/]*|libcuda|libcublas[^/]*|libcudart)\.so' |
    while read -r lib; do cp -nL "$lib" "$stage/lib/"; done
done
rm -f "$carry"/bin.tar.*
tar cf - -C "$stage" . | xz -9 -T0 > "$carry/bin.tar.xz"
du -h "$carry/bin.tar.xz"
