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

struct Params {
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  void* out = nullptr;
  int64_t ldq = 0, ldkv = 0, ldo = 0, nq = 0, nk = 0, heads = 0, kv_heads = 0, head_dim = 0;
  const int64_t* q_pos = nullptr;
  const int64_t* k_pos = nullptr;
  bool keys_sorted = true;
  float scale = 1.f;
  // ADA's all-queries mode: query i also sees row i of own_k / own_v where own_mask[i] != 0.
  const void* own_k = nullptr;
  const void* own_v = nullptr;
  int64_t ldown = 0;
  const uint8_t* own_mask = nullptr;
  // ADA's proportional option: bias[i * ldbias + j] added to the scaled logit of query i and key j.
  const float* bias = nullptr;
  int64_t ldbias = 0;
  // The general kernel's split over keys: `splits` ranges of `chunk` keys; with more than one,
  // partial holds [nq, heads, splits, head_dim + 2] floats (max, sum, unnormalised output).
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

}  // namespace cascade::ops::gpu::attn
