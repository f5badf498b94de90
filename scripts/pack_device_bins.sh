#!/usr/bin/env bash
# Packs binaries built here for the device machine, whose image lacks the Debian libraries they link
# (OpenBLAS, libgomp, Google Benchmark, a newer libstdc++): CARRY/bin.tar.gz holds the given files of
# BUILD at their relative paths plus lib/ with every non-CUDA, non-libc shared library they need.
# scripts/device_env.sh unpacks it there. CARRY must be an ignored directory (.git/info/exclude).
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
tar czf "$carry/bin.tar.gz" -C "$stage" .
du -h "$carry/bin.tar.gz"
