// Attention kernel bodies (included by the attention_cuda_<dtype>.cu instance files only).
//
// flash_kernel<T, D, MT>: a block of 4 warps owns 64 * MT queries of one head; each warp owns 16 * MT
// rows. Per key tile (K, V and the keys' positions copied to shared memory with cp.async, V(t) while
// S(t) is computed and K(t + 1) while the softmax and P V(t) are): S = Q K^T with mma.sync (float32
// accumulate) in registers, the online softmax (float32, exp2 with the scale folded in), the output
// rescaled in registers, and O += P V. Causality is by position, so it holds for gathered keys (ADA's
// representatives) as well as for a KV cache; with keys_sorted a block stops before the first tile
// whose first key lies past its last query (the optional window, a mask by position too, only hides
// more keys). Query tiles are issued last-first so the long causal rows
// start early.
// The kernel is a short body over __forceinline__ steps, each its own function: flash_prologue (block
// setup, Q's tile), the tile pipeline (flash_load_keys, flash_wait_keys_load_values,
// flash_wait_values_load_next_keys), flash_scores (S = Q K^T), flash_add_bias, flash_mask,
// flash_online_softmax, flash_pv (O += P V) and flash_epilogue (own key, normalise, store).
//
// split_kernel<T, NC>: a block of 4 warps per (query, head, range of keys), one warp reduction per
// key, ranges merged by combine_kernel: float32, decoding (a few queries over many keys) and head
// sizes without a tile kernel.
//
// decode_kernel<T, D, GM>: a block of 4 warps per (query, key/value group, range of keys), each key's
// K and V read once for the group's query heads in 16-byte pieces: 16-bit decoding at head sizes 64,
// 128 and 256 without a bias, window or own key; its ranges merged by combine_kernel too.
#pragma once

#include <algorithm>
#include <climits>
#include <type_traits>

#include "ops/attention_cuda_launch.cuh"
#include "ops/cuda_common.cuh"

namespace cascade::ops::gpu::attn {

// The sliding window (AttentionArgs::window): whether key j at kp, visible to a query at qp by
// position, lies inside the query's window or is pinned.
__device__ __forceinline__ bool in_window(const Params& p, int64_t qp, int64_t kp, int64_t j) {
  return p.window <= 0 || qp - kp < p.window || (p.key_pinned && p.key_pinned[j]);
}

// ---- general kernel, split over keys ---------------------------------------------------------------
// Block (i, h, s) owns query i, head h and the keys [s * chunk, (s + 1) * chunk); its W warps take
// every W-th key of that range, G keys at a time, each warp with its own online softmax (one warp
// reduction per key),
// and the block merges the W states in shared memory. With one split the block writes the output;
// with several it writes its unnormalised sum and its (max, sum of exponentials) to p.partial, and
// combine_kernel merges the splits. A decoded token (one query, thousands of keys) so spreads over
// the whole GPU instead of one warp per head (FlashDecoding's split-K).
constexpr int kSplitWarps = 4;

// The weight of a state with running max m in a merge whose max is M (zero for an empty state).
__device__ __forceinline__ float merge_weight(float m, float M) { return m == -INFINITY ? 0.f : expf(m - M); }

template <typename T, int NC>
__global__ void __launch_bounds__(32 * kSplitWarps) split_kernel(Params p) {
  constexpr int W = kSplitWarps, G = 4;
  __shared__ float sm_m[W], sm_l[W], sm_acc[W][32 * NC];
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
  const int64_t i = blockIdx.x, h = blockIdx.y, kh = h / (p.heads / p.kv_heads), hd = p.head_dim;
  const int64_t j0 = int64_t(blockIdx.z) * p.chunk, j1 = min(p.nk, j0 + p.chunk);
  const T* q = static_cast<const T*>(p.q) + i * p.ldq + h * hd;
  const T* K = static_cast<const T*>(p.k) + kh * hd;
  const T* V = static_cast<const T*>(p.v) + kh * hd;
  float qr[NC], acc[NC];
#pragma unroll
  for (int c = 0; c < NC; ++c) {
    const int64_t d = lane + 32 * c;
    qr[c] = d < hd ? to_float(q[d]) * p.scale : 0.f;
    acc[c] = 0.f;
  }
  const int64_t qp = p.q_pos[i];
  float m = -INFINITY, l = 0.f;
  // G keys at a time (keys jb, jb + W, ...), their positions and K and V rows loaded together so the
  // loads overlap; a key past the range reads the range's last row and is masked.
  for (int64_t jb = j0 + w; jb < j1; jb += int64_t(W) * G) {
    int64_t row[G];
    bool visible[G], past = false;
    float s[G], mx = m;
#pragma unroll
    for (int g = 0; g < G; ++g) {
      const int64_t j = jb + int64_t(g) * W;
      row[g] = min(j, j1 - 1);
      const int64_t kp = p.k_pos[row[g]];
      visible[g] = j < j1 && kp <= qp && in_window(p, qp, kp, row[g]);
      past |= j < j1 && kp > qp;  // by position only: a key before the window is not past the query
      const T* kr = K + row[g] * p.ldkv;
      float dot = 0.f;
#pragma unroll
      for (int c = 0; c < NC; ++c) {
        const int64_t d = lane + 32 * c;
        if (d < hd) dot += qr[c] * to_float(kr[d]);
      }
      s[g] = dot;
    }
#pragma unroll
    for (int g = 0; g < G; ++g) {
      s[g] = visible[g] ? warp_sum(s[g]) + (p.bias ? p.bias[i * p.ldbias + row[g]] : 0.f) : -INFINITY;
      mx = fmaxf(mx, s[g]);
    }
    if (mx != -INFINITY) {
      const float corr = merge_weight(m, mx);
      float e[G];
#pragma unroll
      for (int g = 0; g < G; ++g) {
        e[g] = merge_weight(s[g], mx);
        l = g == 0 ? l * corr + e[g] : l + e[g];
      }
#pragma unroll
      for (int c = 0; c < NC; ++c) {
        const int64_t d = lane + 32 * c;
        if (d >= hd) continue;
        float a = acc[c] * corr;
#pragma unroll
        for (int g = 0; g < G; ++g)  // a masked key's row may hold anything (a cache's unused rows)
          if (visible[g]) a += e[g] * to_float(V[row[g] * p.ldkv + d]);
        acc[c] = a;
      }
      m = mx;
    }
    if (past && p.keys_sorted) break;
  }
  if (lane == 0) {
    sm_m[w] = m;
    sm_l[w] = l;
  }
#pragma unroll
  for (int c = 0; c < NC; ++c) sm_acc[w][lane + 32 * c] = acc[c];
  __syncthreads();
  float M = -INFINITY, L = 0.f, e[W];
#pragma unroll
  for (int u = 0; u < W; ++u) M = fmaxf(M, sm_m[u]);
#pragma unroll
  for (int u = 0; u < W; ++u) {
    e[u] = merge_weight(sm_m[u], M);
    L += sm_l[u] * e[u];
  }
  // ADA's all-queries mode: the query's own key, merged once (by the first range) as one more key.
  __shared__ float own_logit;
  const bool own = p.own_mask && blockIdx.z == 0 && p.own_mask[i];  // the same in the whole block
  float own_w = 0.f;
  const T* own_v = own ? static_cast<const T*>(p.own_v) + i * p.ldown + kh * hd : nullptr;
  if (own) {
    if (w == 0) {
      const T* ok = static_cast<const T*>(p.own_k) + i * p.ldown + kh * hd;
      float dot = 0.f;
#pragma unroll
      for (int c = 0; c < NC; ++c) {
        const int64_t d = lane + 32 * c;
        if (d < hd) dot += qr[c] * to_float(ok[d]);
      }
      dot = warp_sum(dot);
      if (lane == 0) own_logit = dot;
    }
    __syncthreads();
    const float M2 = fmaxf(M, own_logit), c = merge_weight(M, M2);
#pragma unroll
    for (int u = 0; u < W; ++u) e[u] *= c;
    own_w = expf(own_logit - M2);
    L = L * c + own_w;
    M = M2;
  }
  const int64_t unit = (i * p.heads + h) * p.splits + blockIdx.z;
  for (int64_t d = threadIdx.x; d < hd; d += blockDim.x) {
    float o = own ? own_w * to_float(own_v[d]) : 0.f;
#pragma unroll
    for (int u = 0; u < W; ++u) o += sm_acc[u][d] * e[u];
    if (p.splits == 1) static_cast<T*>(p.out)[i * p.ldo + h * hd + d] = from_float<T>(o / L);
    else p.partial[unit * (hd + 2) + 2 + d] = o;
  }
  if (p.splits > 1 && threadIdx.x == 0) {
    p.partial[unit * (hd + 2)] = M;
    p.partial[unit * (hd + 2) + 1] = L;
  }
}

// Block (i, h): merges query i's splits for head h from p.partial into the output. The splits' weights
// are found once, by the block together, into shared memory (dynamic, run_combine's size); each output
// element is then a sum over the splits whose loads do not wait on one another. A decoded token's merge
// is one block a head, so its time is its loads' latency, not their bandwidth.
template <typename T>
__global__ void __launch_bounds__(128) combine_kernel(Params p) {
  extern __shared__ float weight[];
  const int64_t i = blockIdx.x, h = blockIdx.y, hd = p.head_dim, stride = hd + 2;
  const float* part = p.partial + (i * p.heads + h) * p.splits * stride;
  float M = -INFINITY;
  for (int64_t s = threadIdx.x; s < p.splits; s += blockDim.x) M = fmaxf(M, part[s * stride]);
  M = block_max(M);
  float L = 0.f;
  for (int64_t s = threadIdx.x; s < p.splits; s += blockDim.x) {
    weight[s] = merge_weight(part[s * stride], M);
    L += part[s * stride + 1] * weight[s];
  }
  L = block_sum(L);  // its barriers also publish weight[]
  for (int64_t d = threadIdx.x; d < hd; d += blockDim.x) {
    float o = 0.f;
#pragma unroll 8
    for (int64_t s = 0; s < p.splits; ++s) o += part[s * stride + 2 + d] * weight[s];
    static_cast<T*>(p.out)[i * p.ldo + h * hd + d] = from_float<T>(o / L);
  }
}

// The weights' array is sized in whole pieces of 8 floats: the compiled sum reads the unrolled loop's
// remainder (up to 7 weights from a 32-byte boundary) in 16-byte loads past its last weight, which
// memcheck reports as out of bounds when the array ends there.
template <typename T>
void run_combine(const Params& p, Stream s) {
  const size_t bytes = size_t((p.splits + 7) / 8 * 8) * sizeof(float);
  combine_kernel<T><<<dim3(unsigned(p.nq), unsigned(p.heads)), 128, bytes, s>>>(p);
  CASCADE_CUDA_LAUNCH_CHECK();
}

template <typename T, int NC>
void run_split(const Params& p, Stream s) {
  split_kernel<T, NC><<<dim3(unsigned(p.nq), unsigned(p.heads), unsigned(p.splits)), 32 * kSplitWarps, 0, s>>>(p);
  CASCADE_CUDA_LAUNCH_CHECK();
  if (p.splits > 1) run_combine<T>(p, s);
}

// ---- decoding kernel, one key/value group a block ------------------------------------------------
// Block (i, kh, s) owns query i, the G = heads / kv_heads (at most GM) query heads that share key/value
// head kh, and the keys [s * chunk, (s + 1) * chunk). The split kernel reads a group's keys and values
// once per query head, a key at a time with a warp reduction each; here each key's K and V rows are read
// once for the whole group, in 16-byte pieces: a key takes D / 8 lanes (8 elements each), a warp 256 / D
// keys at once, and kDecodeSteps such steps are loaded before any is used. Each lane group keeps an
// online softmax per head over the keys it took; the warp merges its lane groups with shuffles, the
// block merges its warps in shared memory and writes, per query head, the output (one split) or its
// partial state in the split kernel's layout, which combine_kernel merges. Causal by position
// (with keys_sorted, the ranges split only the keys at or before the query's position); no bias, window or own key
// (attention_cuda.cu sends those to the split kernel). 16-bit T only.
constexpr int kDecodeWarps = 4, kDecodeSteps = 4;

// Merges the online-softmax state (m2, l2, a2) into (m, l, a).
template <int N>
__device__ __forceinline__ void merge_state(float& m, float& l, float (&a)[N], float m2, float l2, const float (&a2)[N]) {
  const float M = fmaxf(m, m2), x = merge_weight(m, M), y = merge_weight(m2, M);
  l = l * x + l2 * y;
#pragma unroll
  for (int e = 0; e < N; ++e) a[e] = a[e] * x + a2[e] * y;
  m = M;
}

// The number of keys at or before position qp among sorted keys (k_pos nondecreasing): the first j
// with k_pos[j] > qp, found by the whole warp 32 ways at a time (three dependent loads for 20480 keys,
// four for 131072), the same count in every lane. Each warp of a block finds it for itself (the same few
// loads, from L1 after the first warp's) instead of waiting at a barrier for one warp's answer; the two
// were not timed against each other.
__device__ __forceinline__ int64_t keys_at_or_before(const Params& p, int64_t qp) {
  const int lane = threadIdx.x & 31;
  int64_t lo = 0, hi = p.nk;  // k_pos[lo - 1] <= qp (or lo = 0) and k_pos[hi] > qp (or hi = nk)
  while (lo < hi) {
    const int64_t step = (hi - lo + 31) / 32, j = lo + (lane + 1) * step - 1;
    const int below = __popc(__ballot_sync(0xffffffffu, j < hi && p.k_pos[j] <= qp));
    hi = min(hi, lo + (below + 1) * step - 1);
    lo += below * step;
  }
  return lo;
}

template <typename T, int D, int GM>
__global__ void __launch_bounds__(32 * kDecodeWarps) decode_kernel(Params p) {
  constexpr int LPK = D / 8, KPW = 32 / LPK, W = kDecodeWarps, U = kDecodeSteps;
  static_assert(32 % LPK == 0, "a key's lanes must divide the warp");
  __shared__ float sm_m[W][GM], sm_l[W][GM], sm_acc[W][GM][D];
  const int lane = threadIdx.x & 31, w = threadIdx.x >> 5, slot = lane / LPK, piece = lane % LPK;
  const int G = int(p.heads / p.kv_heads);
  const int64_t i = blockIdx.x, kh = blockIdx.y, qp = p.q_pos[i];
  // Sorted keys: the splits share the keys this query sees, not the whole array (a decoding step
  // attends over a cache's capacity, whose unwritten slots lie past the query), so none idles while
  // others read twice their share. The grid stays the plan's: a captured step replays unchanged.
  const int64_t seen = p.keys_sorted ? keys_at_or_before(p, qp) : p.nk;
  const int64_t chunk = p.keys_sorted ? (seen + p.splits - 1) / p.splits : p.chunk;
  const int64_t j0 = int64_t(blockIdx.z) * chunk, j1 = min(seen, j0 + chunk);
  float q[GM][8], acc[GM][8], m[GM], l[GM];
#pragma unroll
  for (int g = 0; g < GM; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.f;
#pragma unroll
    for (int e = 0; e < 8; ++e) q[g][e] = acc[g][e] = 0.f;
    if (g < G) {
      unpack8<T>(*reinterpret_cast<const uint4*>(static_cast<const T*>(p.q) + i * p.ldq + (kh * G + g) * D + piece * 8), q[g]);
#pragma unroll
      for (int e = 0; e < 8; ++e) q[g][e] *= p.scale;
    }
  }
  const T* K = static_cast<const T*>(p.k) + kh * D + piece * 8;
  const T* V = static_cast<const T*>(p.v) + kh * D + piece * 8;
  // Every lane of a warp runs the same iterations (the shuffles need the whole warp); a key past the
  // range reads the range's last row and is masked.
  for (int64_t base = j0 + int64_t(w) * KPW; base < j1; base += int64_t(W) * KPW * U) {
    uint4 kr[U], vr[U];
    bool visible[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t j = base + slot + int64_t(u) * W * KPW, row = min(j, j1 - 1), kp = p.k_pos[row];
      visible[u] = j < j1 && kp <= qp;
      kr[u] = *reinterpret_cast<const uint4*>(K + row * p.ldkv);
      vr[u] = *reinterpret_cast<const uint4*>(V + row * p.ldkv);
    }
    float s[GM][U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      float k8[8];
      unpack8<T>(kr[u], k8);
#pragma unroll
      for (int g = 0; g < GM; ++g) {
        s[g][u] = -INFINITY;
        if (g >= G) continue;  // the same in the whole block
        float dot = 0.f;
#pragma unroll
        for (int e = 0; e < 8; ++e) dot += q[g][e] * k8[e];
#pragma unroll
        for (int off = LPK / 2; off > 0; off >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, off);
        if (visible[u]) s[g][u] = dot;  // a masked key's row may hold anything
      }
    }
#pragma unroll
    for (int g = 0; g < GM; ++g) {
      float mx = m[g];
#pragma unroll
      for (int u = 0; u < U; ++u) mx = fmaxf(mx, s[g][u]);
      const float corr = merge_weight(m[g], mx);
      l[g] *= corr;
#pragma unroll
      for (int e = 0; e < 8; ++e) acc[g][e] *= corr;
#pragma unroll
      for (int u = 0; u < U; ++u) {
        s[g][u] = merge_weight(s[g][u], mx);  // now the key's weight (0 where masked)
        l[g] += s[g][u];
      }
      m[g] = mx;
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      if (!visible[u]) continue;  // 0 times an unused row's NaN would be NaN
      float v8[8];
      unpack8<T>(vr[u], v8);
#pragma unroll
      for (int g = 0; g < GM; ++g)
#pragma unroll
        for (int e = 0; e < 8; ++e) acc[g][e] += s[g][u] * v8[e];
    }
  }
  // The warp's lane groups hold the same pieces of different keys: merged by shuffles across slots.
#pragma unroll
  for (int g = 0; g < GM; ++g)
#pragma unroll
    for (int off = LPK; off < 32; off <<= 1) {
      float a2[8];
#pragma unroll
      for (int e = 0; e < 8; ++e) a2[e] = __shfl_xor_sync(0xffffffffu, acc[g][e], off);
      const float m2 = __shfl_xor_sync(0xffffffffu, m[g], off), l2 = __shfl_xor_sync(0xffffffffu, l[g], off);
      merge_state(m[g], l[g], acc[g], m2, l2, a2);
    }
  if (slot == 0) {
#pragma unroll
    for (int g = 0; g < GM; ++g) {
#pragma unroll
      for (int e = 0; e < 8; ++e) sm_acc[w][g][piece * 8 + e] = acc[g][e];
      if (piece == 0) {
        sm_m[w][g] = m[g];
        sm_l[w][g] = l[g];
      }
    }
  }
  __syncthreads();
  for (int t = threadIdx.x; t < G * D; t += blockDim.x) {
    const int g = t / D, d = t % D;
    float M = -INFINITY, L = 0.f, o = 0.f;
#pragma unroll
    for (int u = 0; u < W; ++u) M = fmaxf(M, sm_m[u][g]);
#pragma unroll
    for (int u = 0; u < W; ++u) {
      const float x = merge_weight(sm_m[u][g], M);
      L += sm_l[u][g] * x;
      o += sm_acc[u][g][d] * x;
    }
    const int64_t h = kh * G + g, unit = (i * p.heads + h) * p.splits + blockIdx.z;
    if (p.splits == 1) {
      static_cast<T*>(p.out)[i * p.ldo + h * D + d] = from_float<T>(o / L);
      continue;
    }
    p.partial[unit * (D + 2) + 2 + d] = o;
    if (d == 0) {
      p.partial[unit * (D + 2)] = M;
      p.partial[unit * (D + 2) + 1] = L;
    }
  }
}

template <typename T, int D, int GM>
void run_decode(const Params& p, Stream s) {
  decode_kernel<T, D, GM><<<dim3(unsigned(p.nq), unsigned(p.kv_heads), unsigned(p.splits)), 32 * kDecodeWarps, 0, s>>>(p);
  CASCADE_CUDA_LAUNCH_CHECK();
  if (p.splits > 1) run_combine<T>(p, s);
}

template <typename T, int D, int GM>
int decode_blocks_per_sm() {
  static const int n = [] {
    int blocks = 0;
    CASCADE_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, decode_kernel<T, D, GM>, 32 * kDecodeWarps, 0));
    return std::max(blocks, 1);
  }();
  return n;
}

// ---- tensor-core kernel -------------------------------------------------------------------------
// mma.sync m16n8k16 (16-bit operands, float32 accumulators) with FlashAttention-2's register
// layout: a block of 4 warps owns 64 * MT queries of one head, each warp MT m-tiles of 16 rows; S =
// Q K^T of a key tile and the output accumulator O stay in registers, so the online softmax rescales
// O in place and the probabilities feed the P V product straight from the S registers. Q, K and V
// tiles sit in shared memory (rows padded by 16 bytes: the fragment loads are free of bank
// conflicts); V's fragments come through ldmatrix.trans. MT = 2 (128 queries, 32-key tiles, so S and
// O fit in 255 registers) feeds each K or V fragment to two products, half the shared-memory reads
// of MT = 1 (64 queries, 64-key tiles), but fits 2 blocks an SM instead of 3: it pays on large grids
// only (attention_cuda.cu, flash_wide). Head size 256 has no registers for a second m-tile (O alone is
// 128 a thread). Fragment ownership, with g = lane / 4, q = lane % 4: an accumulator n-tile holds (row
// g, cols 2q, 2q+1) and (row g+8, the same cols).
template <typename T, int D, int MT>
struct FlashLayout {
  static constexpr int BQ = 64 * MT, BK = 64 / MT, LDQ = D + 8;
  static constexpr size_t q_off = 0;
  static constexpr size_t k_off = q_off + size_t(BQ) * LDQ * sizeof(T);
  static constexpr size_t v_off = k_off + size_t(BK) * LDQ * sizeof(T);
  static constexpr size_t kp_off = v_off + size_t(BK) * LDQ * sizeof(T);
  static constexpr size_t bytes = kp_off + 2 * size_t(BK) * sizeof(int64_t);
};

template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi);
template <>
__device__ __forceinline__ uint32_t pack2<__half>(float lo, float hi) {
  __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}
template <>
__device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
  __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}

template <typename T>
__device__ __forceinline__ void mma16816(float* c, const uint32_t* a, const uint32_t* b) {
  if constexpr (std::is_same_v<T, __half>)
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  else
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// ldmatrix: four 8x8 matrices of 16-bit values, row addresses from lanes 0-7, 8-15, 16-23, 24-31.
__device__ __forceinline__ void ldsm_x4(uint32_t* r, const void* p) {
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
}
__device__ __forceinline__ void ldsm_x4_trans(uint32_t* r, const void* p) {
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(a));
}

// 2^x on the special-function unit alone (ex2.approx.ftz: relative error ~2^-22, 2^-inf = +0);
// exp2f adds range handling for denormal results, which probabilities rounded to 16 bits do not need.
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// cp.async: copies from global to shared memory without passing through registers, so a tile's load
// overlaps the math on the previous one; bytes past src_bytes are zero-filled (src must still be a
// valid address).
__device__ __forceinline__ void cp_async16(void* dst, const void* src, int src_bytes) {
  const unsigned d = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async8(void* dst, const void* src, int src_bytes) {
  const unsigned d = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;\n" ::"r"(d), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_group 0;\n" ::: "memory"); }

// Copies `rows` rows of D 16-bit values (row stride ld) into a shared tile of stride LDQ with the 128
// threads of a block; rows from `valid` on are zero-filled.
template <typename T, int D, int LDQ, int ROWS>
__device__ __forceinline__ void load_tile(T* dst, const T* src, int64_t ld, int64_t valid, int tid) {
  constexpr int VPR = D / 8, N = ROWS * VPR;
#pragma unroll
  for (int i = 0; i < (N + 127) / 128; ++i) {
    const int e = tid + 128 * i, r = e / VPR, c = (e % VPR) * 8;
    if (N % 128 == 0 || e < N) {
      const bool in = r < valid;
      cp_async16(dst + r * LDQ + c, src + (in ? r : 0) * ld + c, in ? 16 : 0);
    }
  }
}

// ---- flash_kernel's steps ------------------------------------------------------------------------
// The kernel (below) is prologue, then per key tile: the tile pipeline's two waits around S = Q K^T,
// bias and mask, the online softmax and O += P V; then the epilogue. Every step is inlined, so the
// kernel compiles to what one body would (same registers, same shared memory).

// What flash_prologue sets up for the rest of the block: shared-memory tiles, the thread's place in
// the block, the block's queries and the number of key tiles it visits.
template <typename T, int D, int MT>
struct FlashBlock {
  T* Qs;                // [BQ, LDQ] the block's queries
  T* Ks;                // [BK, LDQ] key tile t
  T* Vs;                // [BK, LDQ] value tile t
  int64_t* KPs;         // two buffers of BK key positions (tile t in buffer t % 2)
  const int64_t* QPs;   // [BQ] the block's query positions (LLONG_MAX past nq)
  const T* K;           // this head's keys and values (row stride p.ldkv)
  const T* V;
  int tid, lane, g, qd;  // g = lane / 4, qd = lane % 4: the fragment coordinates
  int wrow;              // the warp's first row in the block
  int64_t q0, h, kh;     // the block's first query; query head, key/value head
  int64_t qmin, qmax;    // the smallest and largest query positions in the block
  int n_tiles;           // key tiles the block visits
};

// A lane's online-softmax state: for its R = 2 MT rows (g and g + 8 of each of its warp's MT m-tiles;
// row index ri = 2 mt + half), m, the running maximum of the unscaled logits, and l, this lane's
// partial row sum (the 4 lanes of a row are added in the epilogue); o, its output fragments.
template <int MT, int DT>
struct FlashRows {
  float m[2 * MT], l[2 * MT];
  float o[MT][DT][4];
};

// Prologue: shared-memory carve-up, Q's tile in flight (committed as one cp.async group), the block's
// query positions in shared memory, their min and max, and the number of key tiles to visit.
template <typename T, int D, int MT>
__device__ __forceinline__ FlashBlock<T, D, MT> flash_prologue(const Params& p, unsigned char* smem) {
  using L = FlashLayout<T, D, MT>;
  constexpr int BK = L::BK, LDQ = L::LDQ, R = 2 * MT;
  __shared__ int64_t QPs[L::BQ], warp_qmax[4], warp_qmin[4];
  __shared__ int n_tiles_s;
  FlashBlock<T, D, MT> b;
  b.Qs = reinterpret_cast<T*>(smem + L::q_off);
  b.Ks = reinterpret_cast<T*>(smem + L::k_off);
  b.Vs = reinterpret_cast<T*>(smem + L::v_off);
  b.KPs = reinterpret_cast<int64_t*>(smem + L::kp_off);
  b.QPs = QPs;

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2;
  b.tid = tid, b.lane = lane, b.g = g, b.qd = lane & 3;
  const int64_t q0 = int64_t(gridDim.x - 1 - blockIdx.x) * L::BQ;
  b.q0 = q0;
  b.h = blockIdx.y, b.kh = b.h / (p.heads / p.kv_heads);
  const T* Q = static_cast<const T*>(p.q) + b.h * D;
  b.K = static_cast<const T*>(p.k) + b.kh * D;
  b.V = static_cast<const T*>(p.v) + b.kh * D;
  const int wrow = warp * 16 * MT;
  b.wrow = wrow;

  // Q's tile, in flight while the positions are read.
  load_tile<T, D, LDQ, L::BQ>(b.Qs, Q + q0 * p.ldq, p.ldq, p.nq - q0, tid);
  cp_async_commit();
  // The block's query positions, in shared memory (registers are scarce at MT = 2); padding rows
  // (past nq) see every key by position and are never written.
  for (int e = tid; e < L::BQ; e += 128) QPs[e] = q0 + e < p.nq ? p.q_pos[q0 + e] : LLONG_MAX;
  int64_t mx = LLONG_MIN, mn = LLONG_MAX;
#pragma unroll
  for (int ri = 0; ri < R; ++ri) {
    const int64_t row = q0 + wrow + (ri >> 1) * 16 + g + (ri & 1) * 8;
    if (row < p.nq) {
      const int64_t qp = p.q_pos[row];
      mx = qp > mx ? qp : mx;
      mn = qp < mn ? qp : mn;
    }
  }
  for (int o = 16; o > 0; o >>= 1) {
    const int64_t other = __shfl_xor_sync(0xffffffffu, mx, o), other_mn = __shfl_xor_sync(0xffffffffu, mn, o);
    mx = other > mx ? other : mx;
    mn = other_mn < mn ? other_mn : mn;
  }
  if (lane == 0) {
    warp_qmax[warp] = mx;
    warp_qmin[warp] = mn;
  }
  if (tid == 0) n_tiles_s = int((p.nk + BK - 1) / BK);
  __syncthreads();
  int64_t qmax = warp_qmax[0], qmin = warp_qmin[0];
  for (int w = 1; w < 4; ++w) {
    qmax = warp_qmax[w] > qmax ? warp_qmax[w] : qmax;
    qmin = warp_qmin[w] < qmin ? warp_qmin[w] : qmin;
  }
  b.qmin = qmin;
  b.qmax = qmax;
  // With sorted keys the block stops before the first tile whose first key lies past its last query.
  if (p.keys_sorted)
    for (int64_t t = tid; t * BK < p.nk; t += 128)
      if (p.k_pos[t * BK] > qmax) atomicMin(&n_tiles_s, int(t));
  __syncthreads();
  b.n_tiles = n_tiles_s;
  return b;
}

// ---- the tile pipeline: FlashAttention-2's schedule with one K and one V buffer. V(t) loads while
// S(t) = Q K(t)^T is computed, K(t + 1) while the softmax and P V(t) are; each load is one cp.async
// group, and each wait drains the only group in flight.

// Key tile t's K rows and positions (into position buffer t % 2), zero-filled past nk.
template <typename T, int D, int MT>
__device__ __forceinline__ void flash_load_keys(const Params& p, const FlashBlock<T, D, MT>& b, int t) {
  using L = FlashLayout<T, D, MT>;
  constexpr int BK = L::BK;
  const int64_t k0 = int64_t(t) * BK;
  load_tile<T, D, L::LDQ, BK>(b.Ks, b.K + k0 * p.ldkv, p.ldkv, p.nk - k0, b.tid);
  if (b.tid < BK) {
    const bool in = k0 + b.tid < p.nk;
    cp_async8(b.KPs + (t & 1) * BK + b.tid, p.k_pos + (in ? k0 + b.tid : 0), in ? 8 : 0);
  }
}

// Before S(t): waits for K(t) (and Q), then starts V(t).
template <typename T, int D, int MT>
__device__ __forceinline__ void flash_wait_keys_load_values(const Params& p, const FlashBlock<T, D, MT>& b, int t) {
  using L = FlashLayout<T, D, MT>;
  const int64_t k0 = int64_t(t) * L::BK;
  cp_async_wait_all();
  __syncthreads();  // K(t) (and Q) have landed; every warp is done with V(t - 1)
  load_tile<T, D, L::LDQ, L::BK>(b.Vs, b.V + k0 * p.ldkv, p.ldkv, p.nk - k0, b.tid);
  cp_async_commit();
}

// After S(t): waits for V(t), then starts K(t + 1) (an empty group after the last tile).
template <typename T, int D, int MT>
__device__ __forceinline__ void flash_wait_values_load_next_keys(const Params& p, const FlashBlock<T, D, MT>& b, int t) {
  cp_async_wait_all();
  __syncthreads();  // V(t) has landed; every warp is done with K(t)
  if (t + 1 < b.n_tiles) flash_load_keys(p, b, t + 1);
  cp_async_commit();
}

// S = Q K^T: MT m-tiles of 16 rows x BK keys per warp, in NT accumulator n-tiles of 8 keys.
template <typename T, int D, int MT, int NT>
__device__ __forceinline__ void flash_scores(const FlashBlock<T, D, MT>& b, float (&s)[MT][NT][4]) {
  constexpr int LDQ = FlashLayout<T, D, MT>::LDQ;
  const int lane = b.lane;
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) s[mt][nt][0] = s[mt][nt][1] = s[mt][nt][2] = s[mt][nt][3] = 0.f;
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    // A (Q rows) as four 8x8 matrices: lanes 0-7 rows 0-7, 8-15 rows 8-15, 16-31 the same at +8 cols.
    uint32_t a[MT][4];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) ldsm_x4(a[mt], b.Qs + (b.wrow + mt * 16 + (lane & 15)) * LDQ + kk * 16 + (lane >> 4) * 8);
#pragma unroll
    for (int nt = 0; nt < NT; nt += 2) {
      // B (K^T) for n-tiles nt and nt+1: lanes 0-7 keys 0-7 at d, 8-15 the same keys at d+8,
      // 16-31 keys 8-15 likewise.
      uint32_t bk[4];
      ldsm_x4(bk, b.Ks + (nt * 8 + (lane & 7) + ((lane >> 4) << 3)) * LDQ + kk * 16 + ((lane >> 3) & 1) * 8);
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        mma16816<T>(s[mt][nt], a[mt], bk);
        mma16816<T>(s[mt][nt + 1], a[mt], bk + 2);
      }
    }
  }
}

// ADA's proportional option: the bias, in units of the unscaled logits (it is added after the
// scale); rows past nq and keys past nk take none.
template <typename T, int D, int MT, int NT>
__device__ __forceinline__ void flash_add_bias(const Params& p, const FlashBlock<T, D, MT>& b, int64_t k0,
                                               float (&s)[MT][NT][4]) {
  const float inv_scale = 1.f / p.scale;
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int64_t row = b.q0 + b.wrow + mt * 16 + b.g + half * 8;
      if (row >= p.nq) continue;
      const float* brow = p.bias + row * p.ldbias + k0;
#pragma unroll
      for (int nt = 0; nt < NT; ++nt)
#pragma unroll
        for (int j = 0; j < 2; ++j) {
          const int col = nt * 8 + 2 * b.qd + j;
          if (k0 + col < p.nk) s[mt][nt][2 * half + j] += brow[col] * inv_scale;
        }
    }
}

// Masks by position and window: a key past nk, after the row's query, or outside its window (and not
// pinned) gets -inf.
template <typename T, int D, int MT, int NT>
__device__ __forceinline__ void flash_mask(const Params& p, const FlashBlock<T, D, MT>& b, int64_t k0, const int64_t* kpos,
                                           float (&s)[MT][NT][4]) {
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int col = nt * 8 + 2 * b.qd + (e & 1);
        const int64_t qp = b.QPs[b.wrow + mt * 16 + b.g + (e >> 1) * 8];
        if (k0 + col >= p.nk || kpos[col] > qp || !in_window(p, qp, kpos[col], k0 + col)) s[mt][nt][e] = -INFINITY;
      }
}

// The online softmax of one tile, per row (the 4 lanes of a row hold NT * 2 of its keys each): the
// tile's row max, the new running max, l and O rescaled by exp(old max - new max), and S replaced by
// its exponentials, added to l. sl2: the scale in log2 units, folded into the exponent's FMA.
template <int MT, int NT, int DT>
__device__ __forceinline__ void flash_online_softmax(float sl2, float (&s)[MT][NT][4], FlashRows<MT, DT>& r) {
  constexpr int R = 2 * MT;
  float tmax[R];
#pragma unroll
  for (int ri = 0; ri < R; ++ri) tmax[ri] = -INFINITY;
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) tmax[2 * mt + (e >> 1)] = fmaxf(tmax[2 * mt + (e >> 1)], s[mt][nt][e]);
  float ms[R], corr[R];
#pragma unroll
  for (int ri = 0; ri < R; ++ri) {
    tmax[ri] = fmaxf(tmax[ri], __shfl_xor_sync(0xffffffffu, tmax[ri], 1));
    tmax[ri] = fmaxf(tmax[ri], __shfl_xor_sync(0xffffffffu, tmax[ri], 2));
    const float mnew = fmaxf(r.m[ri], tmax[ri]);
    ms[ri] = mnew == -INFINITY ? 0.f : mnew * sl2;      // nothing visible yet: every exponent is -inf
    corr[ri] = fast_exp2(fmaf(r.m[ri], sl2, -ms[ri]));  // 0 while m was -inf (l and O are 0 then)
    r.m[ri] = mnew;
    r.l[ri] *= corr[ri];
  }
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int ri = 2 * mt + (e >> 1);
        s[mt][nt][e] = fast_exp2(fmaf(s[mt][nt][e], sl2, -ms[ri]));
        r.l[ri] += s[mt][nt][e];
      }
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int dt = 0; dt < DT; ++dt) {
      r.o[mt][dt][0] *= corr[2 * mt];
      r.o[mt][dt][1] *= corr[2 * mt];
      r.o[mt][dt][2] *= corr[2 * mt + 1];
      r.o[mt][dt][3] *= corr[2 * mt + 1];
    }
}

// O += P V: P's A fragments are the S registers, V's B fragments come through ldmatrix.trans.
template <typename T, int D, int MT, int NT, int DT>
__device__ __forceinline__ void flash_pv(const FlashBlock<T, D, MT>& b, const float (&s)[MT][NT][4], float (&o)[MT][DT][4]) {
  using L = FlashLayout<T, D, MT>;
  constexpr int LDQ = L::LDQ;
  const int lane = b.lane;
#pragma unroll
  for (int j = 0; j < L::BK / 16; ++j) {
    uint32_t a[MT][4];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
      a[mt][0] = pack2<T>(s[mt][2 * j][0], s[mt][2 * j][1]);
      a[mt][1] = pack2<T>(s[mt][2 * j][2], s[mt][2 * j][3]);
      a[mt][2] = pack2<T>(s[mt][2 * j + 1][0], s[mt][2 * j + 1][1]);
      a[mt][3] = pack2<T>(s[mt][2 * j + 1][2], s[mt][2 * j + 1][3]);
    }
    // B (V) for d-tiles dt and dt+1, transposed: lanes 0-15 keys 0-15 at d, 16-31 the same at d+8.
    const T* vrow = b.Vs + (j * 16 + (lane & 15)) * LDQ + (lane >> 4) * 8;
#pragma unroll
    for (int dt = 0; dt < DT; dt += 2) {
      uint32_t bv[4];
      ldsm_x4_trans(bv, vrow + dt * 8);
#pragma unroll
      for (int mt = 0; mt < MT; ++mt) {
        mma16816<T>(o[mt][dt], a[mt], bv);
        mma16816<T>(o[mt][dt + 1], a[mt], bv + 2);
      }
    }
  }
}

// Epilogue, after the last tile: ADA's all-queries mode first (a query flagged in own_mask also sees
// its own key, its row of own_k / own_v, merged into the online softmax as one more key; the 4 lanes
// of a row split the dot product over the column pairs they hold in O: 2q, 2q + 1 of every 8), then
// each row's sum over its 4 lanes, O / l, and the store of the rows before nq.
template <typename T, int D, int MT>
__device__ __forceinline__ void flash_epilogue(const Params& p, const FlashBlock<T, D, MT>& b, float sl2,
                                               FlashRows<MT, D / 8>& r) {
  constexpr int LDQ = FlashLayout<T, D, MT>::LDQ, DT = D / 8, R = 2 * MT;
  const int g = b.g, qd = b.qd;
  if (p.own_mask) {
    const T* OK = static_cast<const T*>(p.own_k) + b.kh * D;
    const T* OV = static_cast<const T*>(p.own_v) + b.kh * D;
#pragma unroll
    for (int ri = 0; ri < R; ++ri) {
      const int lr = b.wrow + (ri >> 1) * 16 + g + (ri & 1) * 8;
      const int64_t row = b.q0 + lr;
      const bool own = row < p.nq && p.own_mask[row];
      float dot = 0.f;
      if (own)
        for (int c = 2 * qd; c < D; c += 8)
          dot += to_float(b.Qs[lr * LDQ + c]) * to_float(OK[row * p.ldown + c]) +
                 to_float(b.Qs[lr * LDQ + c + 1]) * to_float(OK[row * p.ldown + c + 1]);
      dot += __shfl_xor_sync(0xffffffffu, dot, 1);
      dot += __shfl_xor_sync(0xffffffffu, dot, 2);
      if (!own) continue;
      const float mnew = fmaxf(r.m[ri], dot), ms = mnew * sl2;
      const float corr = fast_exp2(fmaf(r.m[ri], sl2, -ms)), pw = fast_exp2(fmaf(dot, sl2, -ms));
      r.m[ri] = mnew;
      r.l[ri] = r.l[ri] * corr + (qd == 0 ? pw : 0.f);  // the row's sum is over its 4 lanes' partial sums
      const int mt = ri >> 1, e0 = 2 * (ri & 1);
#pragma unroll
      for (int dt = 0; dt < DT; ++dt) {
        const T* v = OV + row * p.ldown + dt * 8 + 2 * qd;
        r.o[mt][dt][e0] = r.o[mt][dt][e0] * corr + pw * to_float(v[0]);
        r.o[mt][dt][e0 + 1] = r.o[mt][dt][e0 + 1] * corr + pw * to_float(v[1]);
      }
    }
  }

#pragma unroll
  for (int ri = 0; ri < R; ++ri) {
    r.l[ri] += __shfl_xor_sync(0xffffffffu, r.l[ri], 1);
    r.l[ri] += __shfl_xor_sync(0xffffffffu, r.l[ri], 2);
  }
#pragma unroll
  for (int ri = 0; ri < R; ++ri) {
    const int64_t row = b.q0 + b.wrow + (ri >> 1) * 16 + g + (ri & 1) * 8;
    if (row >= p.nq) continue;
    const float inv = 1.f / r.l[ri];
    const int mt = ri >> 1, e0 = 2 * (ri & 1);
    T* out = static_cast<T*>(p.out) + row * p.ldo + b.h * D + 2 * qd;
#pragma unroll
    for (int dt = 0; dt < DT; ++dt) {
      out[dt * 8] = from_float<T>(r.o[mt][dt][e0] * inv);
      out[dt * 8 + 1] = from_float<T>(r.o[mt][dt][e0 + 1] * inv);
    }
  }
}

// ---- the kernel ---------------------------------------------------------------------------------
template <typename T, int D, int MT>
__global__ void __launch_bounds__(128, (MT == 1 && D <= 128) ? 3 : 1) flash_kernel(Params p) {
  using L = FlashLayout<T, D, MT>;
  constexpr int BK = L::BK, NT = BK / 8, DT = D / 8, R = 2 * MT;
  extern __shared__ __align__(128) unsigned char smem[];
  const FlashBlock<T, D, MT> b = flash_prologue<T, D, MT>(p, smem);
  if (b.n_tiles > 0) flash_load_keys(p, b, 0);
  cp_async_commit();

  // Logits stay unscaled; the scale (in log2 units) is folded into the exponent's FMA.
  const float sl2 = p.scale * 1.4426950408889634f;
  FlashRows<MT, DT> r;
#pragma unroll
  for (int ri = 0; ri < R; ++ri) {
    r.m[ri] = -INFINITY;
    r.l[ri] = 0.f;
  }
#pragma unroll
  for (int mt = 0; mt < MT; ++mt)
#pragma unroll
    for (int dt = 0; dt < DT; ++dt) r.o[mt][dt][0] = r.o[mt][dt][1] = r.o[mt][dt][2] = r.o[mt][dt][3] = 0.f;

  for (int t = 0; t < b.n_tiles; ++t) {
    const int64_t k0 = int64_t(t) * BK;
    const int64_t* kpos = b.KPs + (t & 1) * BK;
    flash_wait_keys_load_values(p, b, t);
    float s[MT][NT][4];
    flash_scores(b, s);
    flash_wait_values_load_next_keys(p, b, t);
    if (p.bias) flash_add_bias(p, b, k0, s);
    // A whole tile of sorted keys at or before every query of the block, and inside every query's
    // window, needs no mask (the same decision in every thread).
    if (!(p.keys_sorted && k0 + BK <= p.nk && kpos[BK - 1] <= b.qmin && (p.window <= 0 || b.qmax - kpos[0] < p.window)))
      flash_mask(p, b, k0, kpos, s);
    flash_online_softmax(sl2, s, r);
    flash_pv(b, s, r.o);
  }

  cp_async_wait_all();  // nothing left in flight (a block with no visible tile loaded Q only)
  flash_epilogue(p, b, sl2, r);
}

template <typename T, int D, int MT>
void run_flash(const Params& p, Stream s) {
  using L = FlashLayout<T, D, MT>;
  static const bool configured = [] {
    CASCADE_CUDA_CHECK(cudaFuncSetAttribute(flash_kernel<T, D, MT>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(L::bytes)));
    return true;
  }();
  (void)configured;
  const dim3 grid(unsigned((p.nq + L::BQ - 1) / L::BQ), unsigned(p.heads));
  flash_kernel<T, D, MT><<<grid, 128, L::bytes, s>>>(p);
  CASCADE_CUDA_LAUNCH_CHECK();
}

}  // namespace cascade::ops::gpu::attn
