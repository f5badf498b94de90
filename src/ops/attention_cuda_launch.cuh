// The attention kernels' parameters and launchers, declared for attention_cuda.cu (the dispatch);
// the kernel bodies are in attention_cuda_kernel.cuh and the instantiations in the small
// attention_cuda_<dtype>.cu files, one per dtype (FlashAttention's three layers: body, launch,
// instances), so the kernels compile in parallel and a head size is added or pruned in one place.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "ops/cuda_ops.h"

namespace cascade::ops::gpu::attn {

// The kernels' parameters (passed by value): the op's arguments (ops::AttentionArgs, ops/attention.h)
// plus the general kernel's split over keys: `splits` ranges of `chunk` keys; with more than one,
// partial holds [nq, heads, splits, head_dim + 2] floats (max, sum, unnormalised output).
struct Params : AttentionArgs {
  int64_t chunk = 0, splits = 1;
  float* partial = nullptr;
};

// Tensor-core kernel (mma.sync, 16-bit operands, float32 softmax and accumulators in registers):
// 64 * MT queries x D per block (MT m-tiles of 16 rows a warp), key tiles of 64. T: __half or
// __nv_bfloat16; D: 64, 80, 96, 128 with MT 1 or 2, and 256 with MT 1.
template <typename T, int D, int MT>
void run_flash(const Params& p, Stream s);
// General kernel: 4 warps per (query, head, range of keys), any head size up to 32 * NC; float,
// __half or bf16.
template <typename T, int NC>
void run_split(const Params& p, Stream s);
// Decoding kernel: 4 warps per (query, key/value group, range of keys), up to GM query heads a group;
// __half or bf16, D 64, 128 or 256, rows 16-byte aligned, no bias, window or own key.
template <typename T, int D, int GM>
void run_decode(const Params& p, Stream s);
// Its blocks resident on one SM at once (the occupancy calculator's, found once).
template <typename T, int D, int GM>
int decode_blocks_per_sm();

}  // namespace cascade::ops::gpu::attn
