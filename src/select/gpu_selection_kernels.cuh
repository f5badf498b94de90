// The kernel bodies of the GPU selection (select/gpu_selection.h), launched by gpu_selection_cuda.cu,
// its only includer: edge extraction from a Gram panel (plain and f16-certified), the float64
// recomputation of uncertain pairs, the greedy set's parallel rounds, and the parents' choice.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "select/gpu_selection_internal.cuh"

namespace cascade::select::gpu {
namespace {

constexpr uint8_t kUndecided = 0, kIn = 1, kOut = 2;
constexpr int kRoundBatch = 8;  // rounds launched between two reads of the undecided counts
// Slots of the device counters after the edge count and the rounds' undecided counts.
constexpr int kUncertain = 1 + kRoundBatch, kParentEdges = kUncertain + 1, kCounts = kParentEdges + 1;


// Reserves __popc(mask) consecutive slots of a list for the lanes set in mask (warp-aggregated); each
// such lane gets its own slot.
__device__ unsigned long long warp_append(unsigned mask, unsigned long long* count) {
  const int lane = threadIdx.x & 31, leader = __ffs(mask) - 1;
  unsigned long long base = 0;
  if (lane == leader) base = atomicAdd(count, (unsigned long long)__popc(mask));
  base = __shfl_sync(mask, base, leader);
  return base + __popc(mask & ((1u << lane) - 1u));
}

// Appends the edges of one panel [rows, ld]: row t = row0 + i (blockIdx.y), column j < n (x) at
// position colpos[j] < t with panel[i, j] >= thr. Warp-aggregated atomics; entries past cap are counted but
// not written (the caller grows the list and runs the panel again).
template <typename G>
__global__ void extract_edges(const G* __restrict__ panel, int n, int ld, int64_t row0,
                              const int32_t* __restrict__ colpos, double thr, int32_t* __restrict__ et,
                              int32_t* __restrict__ es, double* __restrict__ er,
                              unsigned long long* __restrict__ count, unsigned long long cap) {
  const int i = blockIdx.y;
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  const int32_t t = int32_t(row0 + i);
  double v = 0.0;
  bool hit = false;
  if (j < n && colpos[j] < t) {
    v = double(panel[int64_t(i) * ld + j]);
    hit = v >= thr;
  }
  const unsigned mask = __ballot_sync(0xffffffffu, hit);
  if (!hit) return;
  const unsigned long long at = warp_append(mask, count);
  if (at < cap) {
    et[at] = t;
    es[at] = colpos[j];
    er[at] = v;
  }
}

// f16-certified's extraction: an fp32 value v with v - E >= thr is an edge for certain (rho_64 >= v - E);
// one with v + E < thr is none; the pairs between are appended to the uncertain list (ut, us), whose
// float64 value decides them (recompute_uncertain). Overflow as extract_edges.
__global__ void extract_edges_certified(const float* __restrict__ panel, int n, int ld, int64_t row0,
                                        const int32_t* __restrict__ colpos, double thr, double E,
                                        int32_t* __restrict__ et, int32_t* __restrict__ es,
                                        double* __restrict__ er, unsigned long long* __restrict__ count,
                                        unsigned long long cap, int32_t* __restrict__ ut,
                                        int32_t* __restrict__ us, unsigned long long* __restrict__ ucount,
                                        unsigned long long ucap) {
  const int i = blockIdx.y;
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  const int32_t t = int32_t(row0 + i);
  double v = 0.0;
  bool sure = false, maybe = false;
  if (j < n && colpos[j] < t) {
    v = double(panel[int64_t(i) * ld + j]);
    sure = v - E >= thr;
    maybe = !sure && v + E >= thr;
  }
  const unsigned sure_mask = __ballot_sync(0xffffffffu, sure), maybe_mask = __ballot_sync(0xffffffffu, maybe);
  if (sure_mask) {
    const unsigned long long at = sure ? warp_append(sure_mask, count) : 0;
    if (sure && at < cap) {
      et[at] = t;
      es[at] = colpos[j];
      er[at] = v;
    }
  }
  if (maybe_mask) {
    const unsigned long long at = maybe ? warp_append(maybe_mask, ucount) : 0;
    if (maybe && at < ucap) {
      ut[at] = t;
      us[at] = colpos[j];
    }
  }
}

// The float64 inner product of rows a and b of z [., d], returned to every lane of the warp (the same
// summation order wherever it is called, so a pair recomputed twice gets the same value).
__device__ double warp_dot(const double* __restrict__ z, int64_t d, int32_t a, int32_t b) {
  const double* za = z + int64_t(a) * d;
  const double* zb = z + int64_t(b) * d;
  double acc = 0.0;
  for (int64_t k = threadIdx.x & 31; k < d; k += 32) acc = fma(za[k], zb[k], acc);
  for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
  return acc;
}

// One warp per uncertain pair: rho in float64 from the float64 rows, appended as an edge when it
// reaches thr (the caller has made room for every pair).
__global__ void recompute_uncertain(const double* __restrict__ z, int64_t d, const int32_t* __restrict__ ut,
                                    const int32_t* __restrict__ us, int64_t n, double thr,
                                    int32_t* __restrict__ et, int32_t* __restrict__ es, double* __restrict__ er,
                                    unsigned long long* __restrict__ count, unsigned long long cap) {
  const int64_t warps = int64_t(gridDim.x) * (blockDim.x >> 5);
  for (int64_t w = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5; w < n; w += warps) {
    const double v = warp_dot(z, d, ut[w], us[w]);
    if ((threadIdx.x & 31) == 0 && v >= thr) {
      const unsigned long long at = atomicAdd(count, 1ull);
      if (at < cap) {
        et[at] = ut[w];
        es[at] = us[w];
        er[at] = v;
      }
    }
  }
}

__global__ void fill_state(int64_t T, uint8_t* st, uint8_t* out_flag, uint8_t* blocked) {
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t < T) st[t] = kUndecided, out_flag[t] = 0, blocked[t] = 0;
}

// Round, part 1 (reads states only): an undecided t with an earlier neighbour in the set is out; one
// with an undecided earlier neighbour must wait.
__global__ void round_edges(const int32_t* __restrict__ et, const int32_t* __restrict__ es, int64_t E,
                            const uint8_t* __restrict__ st, uint8_t* out_flag, uint8_t* blocked) {
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < E;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int32_t t = et[e];
    if (st[t] != kUndecided) continue;
    const uint8_t s = st[es[e]];
    if (s == kIn)
      out_flag[t] = 1;
    else if (s == kUndecided)
      blocked[t] = 1;
  }
}

// Round, part 2 (writes states): applies the flags; counts the tokens still undecided.
__global__ void round_tokens(int64_t T, uint8_t* st, uint8_t* out_flag, uint8_t* blocked,
                             unsigned long long* undecided) {
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  bool left = false;
  if (t < T) {
    if (st[t] == kUndecided) {
      if (out_flag[t])
        st[t] = kOut;
      else if (!blocked[t])
        st[t] = kIn;
      else
        left = true;
    }
    out_flag[t] = 0;
    blocked[t] = 0;
  }
  const unsigned mask = __ballot_sync(0xffffffffu, left);
  if ((threadIdx.x & 31) == 0 && mask) atomicAdd(undecided, (unsigned long long)__popc(mask));
}

// A float64 as an unsigned key with the same order.
__device__ unsigned long long order_key(double v) {
  const unsigned long long b = (unsigned long long)__double_as_longlong(v);
  return (b >> 63) ? ~b : (b | 0x8000000000000000ull);
}
// Its inverse (key 0, no edge, reads as NaN: a comparison with it is false).
__device__ double key_value(unsigned long long k) {
  return __longlong_as_double((long long)((k >> 63) ? (k & 0x7fffffffffffffffull) : ~k));
}

__global__ void parent_init(int64_t T, const uint8_t* st, int32_t* parent, unsigned long long* key) {
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t < T) parent[t] = st[t] == kIn ? int32_t(t) : INT32_MAX, key[t] = 0;
}

// parent(t) = argmax over representatives s < t of rho(t, s), ties to the smallest s: the maximum
// lies among t's neighbours (t is out because one of them reaches theta), so two passes over the
// edges: the largest key, then the smallest s holding it. cand (f16-certified's second pass) limits
// both to the candidate edges; nullptr: every edge.
__global__ void parent_best(const int32_t* __restrict__ et, const int32_t* __restrict__ es,
                            const double* __restrict__ er, int64_t E, const uint8_t* __restrict__ st,
                            const uint8_t* __restrict__ cand, unsigned long long* key) {
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < E;
       e += int64_t(gridDim.x) * blockDim.x)
    if (st[et[e]] == kOut && st[es[e]] == kIn && (!cand || cand[e])) atomicMax(key + et[e], order_key(er[e]));
}

__global__ void parent_pick(const int32_t* __restrict__ et, const int32_t* __restrict__ es,
                            const double* __restrict__ er, int64_t E, const uint8_t* __restrict__ st,
                            const uint8_t* __restrict__ cand, const unsigned long long* __restrict__ key,
                            int32_t* parent) {
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < E;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int32_t t = et[e];
    if (st[t] == kOut && st[es[e]] == kIn && (!cand || cand[e]) && order_key(er[e]) == key[t])
      atomicMin(parent + t, es[e]);
  }
}

// f16-certified: with M_t the largest stored rho of t's edges to representatives (key), an edge whose
// stored value is below M_t - 2E cannot hold the maximum (its rho_64 < M_t - E <= the rho_64 of the
// edge holding M_t); the others are the candidates (cand[e] = 1, counted in ncand[t]).
__global__ void parent_candidates(const int32_t* __restrict__ et, const int32_t* __restrict__ es,
                                  const double* __restrict__ er, int64_t E, const uint8_t* __restrict__ st,
                                  const unsigned long long* __restrict__ key, double two_e, uint8_t* cand,
                                  int32_t* ncand) {
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < E;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int32_t t = et[e];
    const bool c = st[t] == kOut && st[es[e]] == kIn && er[e] >= key_value(key[t]) - two_e;
    cand[e] = c;
    if (c) atomicAdd(ncand + t, 1);
  }
}

// One warp per edge: a candidate of a token with two or more candidates gets its float64 rho, so
// that the argmax and its ties are decided on float64 values; counts them in recomputed.
__global__ void recompute_candidates(const double* __restrict__ z, int64_t d, const int32_t* __restrict__ et,
                                     const int32_t* __restrict__ es, double* __restrict__ er, int64_t E,
                                     const uint8_t* __restrict__ cand, const int32_t* __restrict__ ncand,
                                     unsigned long long* recomputed) {
  const int64_t warps = int64_t(gridDim.x) * (blockDim.x >> 5);
  for (int64_t e = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5; e < E; e += warps) {
    if (!cand[e] || ncand[et[e]] < 2) continue;  // warp-uniform: one edge per warp
    const double v = warp_dot(z, d, et[e], es[e]);
    if ((threadIdx.x & 31) == 0) {
      er[e] = v;
      atomicAdd(recomputed, 1ull);
    }
  }
}

__global__ void iota_kernel(int64_t n, int32_t* out) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = int32_t(i);
}

}  // namespace
}  // namespace cascade::select::gpu
