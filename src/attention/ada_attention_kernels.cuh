// The kernel bodies of ADA's GPU layers (ada_attention_cuda.cu, their only includer): the lstsq mix
// of kept outputs, the error against exact attention's output, the proportional bias built on the
// device, and the resident decoding step's plan and output choice.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "attention/ada_reconstruct.h"
#include "ops/cuda_common.cuh"

namespace cascade {
namespace {

// out[t, :] = sum_k mix[t].coef[k] * src[mix[t].rep[k], :] (float32 sums, in term order, as the CPU);
// one block per row t.
template <typename T>
__global__ void mix_rows_kernel(const T* src, const MixRow* mix, int64_t d, T* out) {
  const int64_t t = blockIdx.x;
  const MixRow m = mix[t];
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
    float acc = 0.f;
    for (int k = 0; k < kMixTerms && m.rep[k] >= 0; ++k) acc += m.coef[k] * ops::gpu::to_float(src[int64_t(m.rep[k]) * d + i]);
    out[t * d + i] = ops::gpu::from_float<T>(acc);
  }
}

// sums[0] += ||a - b||^2, sums[1] += ||b||^2 over n values (float64 sums).
template <typename T>
__global__ void diff_norms_kernel(const T* a, const T* b, int64_t n, double* sums) {
  __shared__ double part[2][32];
  double num = 0, den = 0;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const double x = ops::gpu::to_float(a[i]), y = ops::gpu::to_float(b[i]);
    num += (x - y) * (x - y);
    den += y * y;
  }
  for (int o = 16; o > 0; o >>= 1) {
    num += __shfl_xor_sync(0xffffffffu, num, o);
    den += __shfl_xor_sync(0xffffffffu, den, o);
  }
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  if (lane == 0) part[0][w] = num, part[1][w] = den;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int i = 1; i < int(blockDim.x >> 5); ++i) num += part[0][i], den += part[1][i];
    atomicAdd(&sums[0], num);
    atomicAdd(&sums[1], den);
  }
}

// The proportional bias [rows, nk] (AdaPlan::has_bias), zeroed before: thread per key column; a
// representative's column walks the tokens once, counting the children of its token up to each query
// token (query tokens ascending), as AdaPlan::bias_rows states it. O(T) a representative, where the
// host's expansion and upload of a T x T matrix cost ~0.2 s a layer at T = 8192.
__global__ void proportional_bias_kernel(const int32_t* parent, const int32_t* query_tokens, int64_t rows,
                                         const int32_t* key_rep_token, int64_t nk, const float* log_n, float* bias) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= nk) return;
  const int32_t u = key_rep_token[j];
  if (u < 0) return;
  int64_t i = 0, hi = rows;  // the first query row at or after u
  while (i < hi) {
    const int64_t mid = (i + hi) / 2;
    if (query_tokens[mid] < u) i = mid + 1;
    else hi = mid;
  }
  int32_t n = 1, c = u + 1;
  for (; i < rows; ++i) {
    for (const int32_t t = query_tokens[i]; c <= t; ++c) n += parent[c] == u;
    bias[i * nk + j] = log_n[n];
  }
}

// A resident step's plan (AdaPlan::decode for one token without sinks or window), from the decision
// {is_rep, index} on the device: a representative's K/V (row 0 of the fused Q/K/V rows) and position
// join the cache at its slot (= its index among the representatives) with n = 1; any other token
// adds 1 to its representative's n. counts/bias (proportional, else null): each slot's n and log n
// (log_n[n], the plan's values). own (all-queries, else null): whether the query sees its own key
// (it was not appended). One block.
template <typename T>
__global__ void resident_plan_kernel(const int32_t* __restrict__ decision, const T* __restrict__ k_row,
                                     const T* __restrict__ v_row, int64_t kd, const int64_t* __restrict__ qpos, T* k,
                                     T* v, int64_t* pos, int32_t* counts, const float* __restrict__ log_n, float* bias,
                                     uint8_t* own) {
  const bool rep = decision[0] != 0;
  const int64_t slot = decision[1];
  if (rep)
    for (int64_t i = threadIdx.x; i < kd; i += blockDim.x) {
      k[slot * kd + i] = k_row[i];
      v[slot * kd + i] = v_row[i];
    }
  if (threadIdx.x != 0) return;
  if (rep) pos[slot] = *qpos;
  if (counts) {
    const int32_t n = rep ? 1 : counts[slot] + 1;
    counts[slot] = n;
    bias[slot] = log_n[n];
  }
  if (own) *own = !rep;
}

// queries=reps, after a resident step's attention and output projection into out [d]: a
// representative's output is kept at its slot; any other token takes its representative's instead.
template <typename T>
__global__ void resident_output_kernel(const int32_t* __restrict__ decision, T* out, T* kept, int64_t d) {
  const bool rep = decision[0] != 0;
  T* row = kept + int64_t(decision[1]) * d;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
    if (rep) row[i] = out[i];
    else out[i] = row[i];
  }
}

}  // namespace
}  // namespace cascade
