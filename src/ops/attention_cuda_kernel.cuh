// Attention kernel bodies (included by the attention_cuda_<dtype>.cu instance files only).
//
// flash_kernel<T, D>: a block of 4 warps owns 64 queries of one head; each warp owns 16 rows.
// Per key tile of 64 keys (K, V and their positions staged in shared memory): S = Q K^T with
// mma.sync (float32 accumulate) in registers, the online softmax (float32, exp2 with the scale
// folded in), the output rescaled in registers, and O += P V. Causality is by position, so it holds for gathered keys (ADA's
// representatives) as well as for a KV cache; with keys_sorted a block stops at the first tile whose
// first key lies past its last query. Query tiles are issued last-first so the long causal rows
// start early.
//
// split_kernel<T, NC>: a block of 4 warps per (query, head, range of keys), one warp reduction per
// key, ranges merged by combine_kernel: float32, decoding (a few queries over many keys) and head
// sizes without a tile kernel.
#pragma once

#include <climits>
#include <type_traits>

#include "ops/attention_cuda_launch.cuh"
#include "ops/cuda_common.cuh"

namespace cascade::ops::gpu::attn {

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
      visible[g] = j < j1 && p.k_pos[row[g]] <= qp;
      past |= j < j1 && !visible[g];
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
      s[g] = visible[g] ? warp_sum(s[g]) : -INFINITY;
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
  const int64_t unit = (i * p.heads + h) * p.splits + blockIdx.z;
  for (int64_t d = threadIdx.x; d < hd; d += blockDim.x) {
    float o = 0.f;
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

// Block (i, h): merges query i's splits for head h from p.partial into the output.
template <typename T>
__global__ void __launch_bounds__(128) combine_kernel(Params p) {
  const int64_t i = blockIdx.x, h = blockIdx.y, hd = p.head_dim;
  const float* part = p.partial + (i * p.heads + h) * p.splits * (hd + 2);
  float M = -INFINITY, L = 0.f;
  for (int64_t s = 0; s < p.splits; ++s) M = fmaxf(M, part[s * (hd + 2)]);
  for (int64_t s = 0; s < p.splits; ++s) L += part[s * (hd + 2) + 1] * merge_weight(part[s * (hd + 2)], M);
  for (int64_t d = threadIdx.x; d < hd; d += blockDim.x) {
    float o = 0.f;
    for (int64_t s = 0; s < p.splits; ++s) o += part[s * (hd + 2) + 2 + d] * merge_weight(part[s * (hd + 2)], M);
    static_cast<T*>(p.out)[i * p.ldo + h * hd + d] = from_float<T>(o / L);
  }
}

template <typename T, int NC>
void run_split(const Params& p, Stream s) {
  split_kernel<T, NC><<<dim3(unsigned(p.nq), unsigned(p.heads), unsigned(p.splits)), 32 * kSplitWarps, 0, s>>>(p);
  CASCADE_CUDA_LAUNCH_CHECK();
  if (p.splits == 1) return;
  combine_kernel<T><<<dim3(unsigned(p.nq), unsigned(p.heads)), 128, 0, s>>>(p);
  CASCADE_CUDA_LAUNCH_CHECK();
}

// ---- tensor-core kernel -------------------------------------------------------------------------
// mma.sync m16n8k16 (16-bit operands, float32 accumulators) with FlashAttention-2's register
// layout: a block of 4 warps owns 64 queries of one head, each warp 16 rows; S = Q K^T of a 64-key
// tile and the output accumulator O stay in registers, so the online softmax rescales O in place and
// the probabilities feed the P V product straight from the S registers. Q, K and V tiles sit in
// shared memory (rows padded by 16 bytes: the fragment loads are free of bank conflicts); V's
// fragments come through ldmatrix.trans. Fragment ownership, with g = lane / 4, q = lane % 4:
// an accumulator n-tile holds (row g, cols 2q, 2q+1) and (row g+8, the same cols).
template <typename T, int D>
struct FlashLayout {
  static constexpr int BQ = 64, BK = 64, LDQ = D + 8;
  static constexpr size_t q_off = 0;
  static constexpr size_t k_off = q_off + size_t(BQ) * LDQ * sizeof(T);
  static constexpr size_t v_off = k_off + size_t(BK) * LDQ * sizeof(T);
  static constexpr size_t kp_off = v_off + size_t(BK) * LDQ * sizeof(T);
  static constexpr size_t bytes = kp_off + size_t(BK) * sizeof(int64_t);
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

template <typename T, int D>
__global__ void __launch_bounds__(128) flash_kernel(Params p) {
  using L = FlashLayout<T, D>;
  constexpr int BK = L::BK, LDQ = L::LDQ, VEC = 8, VPR = D / VEC, NT = BK / 8, DT = D / 8;
  extern __shared__ __align__(128) unsigned char smem[];
  T* Qs = reinterpret_cast<T*>(smem + L::q_off);
  T* Ks = reinterpret_cast<T*>(smem + L::k_off);
  T* Vs = reinterpret_cast<T*>(smem + L::v_off);
  int64_t* KPs = reinterpret_cast<int64_t*>(smem + L::kp_off);
  __shared__ int64_t warp_qmax[4], warp_qmin[4];

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, qd = lane & 3;
  const int64_t q0 = int64_t(gridDim.x - 1 - blockIdx.x) * L::BQ;
  const int64_t h = blockIdx.y, kh = h / (p.heads / p.kv_heads);
  const T* Q = static_cast<const T*>(p.q) + h * D;
  const T* K = static_cast<const T*>(p.k) + kh * D;
  const T* V = static_cast<const T*>(p.v) + kh * D;

  for (int e = tid; e < L::BQ * VPR; e += 128) {
    const int r = e / VPR, c = (e % VPR) * VEC;
    uint4 val = make_uint4(0, 0, 0, 0);
    if (q0 + r < p.nq) val = *reinterpret_cast<const uint4*>(Q + (q0 + r) * p.ldq + c);
    *reinterpret_cast<uint4*>(Qs + r * LDQ + c) = val;
  }
  // This lane's two rows (g and g + 8 of the warp's 16); padding rows see every key, never written.
  const int r_lo = warp * 16 + g, r_hi = r_lo + 8;
  const bool v_lo = q0 + r_lo < p.nq, v_hi = q0 + r_hi < p.nq;
  const int64_t qp_lo = v_lo ? p.q_pos[q0 + r_lo] : LLONG_MAX, qp_hi = v_hi ? p.q_pos[q0 + r_hi] : LLONG_MAX;
  int64_t mx = v_lo ? qp_lo : LLONG_MIN, mn = v_lo ? qp_lo : LLONG_MAX;
  if (v_hi && qp_hi > mx) mx = qp_hi;
  if (v_hi && qp_hi < mn) mn = qp_hi;
  for (int o = 16; o > 0; o >>= 1) {
    const int64_t other = __shfl_xor_sync(0xffffffffu, mx, o), other_mn = __shfl_xor_sync(0xffffffffu, mn, o);
    mx = other > mx ? other : mx;
    mn = other_mn < mn ? other_mn : mn;
  }
  if (lane == 0) {
    warp_qmax[warp] = mx;
    warp_qmin[warp] = mn;
  }
  __syncthreads();
  int64_t qmax = warp_qmax[0], qmin = warp_qmin[0];
  for (int w = 1; w < 4; ++w) {
    qmax = warp_qmax[w] > qmax ? warp_qmax[w] : qmax;
    qmin = warp_qmin[w] < qmin ? warp_qmin[w] : qmin;
  }

  const float sl2 = p.scale * 1.4426950408889634f;  // logits in log2 units
  float m_lo = -INFINITY, m_hi = -INFINITY, l_lo = 0.f, l_hi = 0.f;
  float o[DT][4];
#pragma unroll
  for (int dt = 0; dt < DT; ++dt) o[dt][0] = o[dt][1] = o[dt][2] = o[dt][3] = 0.f;

  for (int64_t k0 = 0; k0 < p.nk; k0 += BK) {
    if (p.keys_sorted && p.k_pos[k0] > qmax) break;  // the same for every thread of the block
    __syncthreads();                                 // the previous tile is no longer read
    for (int e = tid; e < BK * VPR; e += 128) {
      const int r = e / VPR, c = (e % VPR) * VEC;
      uint4 kv = make_uint4(0, 0, 0, 0), vv = make_uint4(0, 0, 0, 0);
      if (k0 + r < p.nk) {
        kv = *reinterpret_cast<const uint4*>(K + (k0 + r) * p.ldkv + c);
        vv = *reinterpret_cast<const uint4*>(V + (k0 + r) * p.ldkv + c);
      }
      *reinterpret_cast<uint4*>(Ks + r * LDQ + c) = kv;
      *reinterpret_cast<uint4*>(Vs + r * LDQ + c) = vv;
    }
    for (int e = tid; e < BK; e += 128) KPs[e] = k0 + e < p.nk ? p.k_pos[k0 + e] : LLONG_MAX;
    __syncthreads();

    // S = Q K^T: 16 rows x 64 keys per warp, in NT accumulator n-tiles of 8 keys.
    float s[NT][4];
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      // A (Q rows) as four 8x8 matrices: lanes 0-7 rows 0-7, 8-15 rows 8-15, 16-31 the same at +8 cols.
      uint32_t a[4];
      ldsm_x4(a, Qs + (warp * 16 + (lane & 15)) * LDQ + kk * 16 + (lane >> 4) * 8);
#pragma unroll
      for (int nt = 0; nt < NT; nt += 2) {
        // B (K^T) for n-tiles nt and nt+1: lanes 0-7 keys 0-7 at d, 8-15 the same keys at d+8,
        // 16-31 keys 8-15 likewise.
        uint32_t b[4];
        ldsm_x4(b, Ks + (nt * 8 + (lane & 7) + ((lane >> 4) << 3)) * LDQ + kk * 16 + ((lane >> 3) & 1) * 8);
        mma16816<T>(s[nt], a, b);
        mma16816<T>(s[nt + 1], a, b + 2);
      }
    }

    // Mask by position, online softmax per row (the 4 lanes of a row hold 16 of its 64 keys each).
    // A whole tile of sorted keys at or before every query of the block needs no mask (the same
    // decision in every thread).
    const bool all_visible = p.keys_sorted && k0 + BK <= p.nk && KPs[BK - 1] <= qmin;
    float tmax_lo = -INFINITY, tmax_hi = -INFINITY;
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        if (all_visible) {
          s[nt][j] *= sl2;
          s[nt][2 + j] *= sl2;
        } else {
          const int64_t kp = KPs[nt * 8 + 2 * qd + j];
          s[nt][j] = kp <= qp_lo ? s[nt][j] * sl2 : -INFINITY;
          s[nt][2 + j] = kp <= qp_hi ? s[nt][2 + j] * sl2 : -INFINITY;
        }
        tmax_lo = fmaxf(tmax_lo, s[nt][j]);
        tmax_hi = fmaxf(tmax_hi, s[nt][2 + j]);
      }
    }
#pragma unroll
    for (int off = 1; off <= 2; off <<= 1) {
      tmax_lo = fmaxf(tmax_lo, __shfl_xor_sync(0xffffffffu, tmax_lo, off));
      tmax_hi = fmaxf(tmax_hi, __shfl_xor_sync(0xffffffffu, tmax_hi, off));
    }
    const float mn_lo = fmaxf(m_lo, tmax_lo), mn_hi = fmaxf(m_hi, tmax_hi);
    const bool none_lo = mn_lo == -INFINITY, none_hi = mn_hi == -INFINITY;  // nothing visible yet
    const float c_lo = none_lo ? 1.f : exp2f(m_lo - mn_lo), c_hi = none_hi ? 1.f : exp2f(m_hi - mn_hi);
    m_lo = mn_lo;
    m_hi = mn_hi;
    float sum_lo = 0.f, sum_hi = 0.f;
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        s[nt][j] = none_lo ? 0.f : exp2f(s[nt][j] - mn_lo);
        s[nt][2 + j] = none_hi ? 0.f : exp2f(s[nt][2 + j] - mn_hi);
        sum_lo += s[nt][j];
        sum_hi += s[nt][2 + j];
      }
    }
    l_lo = l_lo * c_lo + sum_lo;  // this lane's partial row sums; the 4 lanes are added at the end
    l_hi = l_hi * c_hi + sum_hi;
#pragma unroll
    for (int dt = 0; dt < DT; ++dt) {
      o[dt][0] *= c_lo;
      o[dt][1] *= c_lo;
      o[dt][2] *= c_hi;
      o[dt][3] *= c_hi;
    }

    // O += P V: P's A fragments are the S registers, V's B fragments come through ldmatrix.trans.
#pragma unroll
    for (int j = 0; j < BK / 16; ++j) {
      uint32_t a[4];
      a[0] = pack2<T>(s[2 * j][0], s[2 * j][1]);
      a[1] = pack2<T>(s[2 * j][2], s[2 * j][3]);
      a[2] = pack2<T>(s[2 * j + 1][0], s[2 * j + 1][1]);
      a[3] = pack2<T>(s[2 * j + 1][2], s[2 * j + 1][3]);
      // B (V) for d-tiles dt and dt+1, transposed: lanes 0-15 keys 0-15 at d, 16-31 the same at d+8.
      const T* vrow = Vs + (j * 16 + (lane & 15)) * LDQ + (lane >> 4) * 8;
#pragma unroll
      for (int dt = 0; dt < DT; dt += 2) {
        uint32_t b[4];
        ldsm_x4_trans(b, vrow + dt * 8);
        mma16816<T>(o[dt], a, b);
        mma16816<T>(o[dt + 1], a, b + 2);
      }
    }
  }

#pragma unroll
  for (int off = 1; off <= 2; off <<= 1) {
    l_lo += __shfl_xor_sync(0xffffffffu, l_lo, off);
    l_hi += __shfl_xor_sync(0xffffffffu, l_hi, off);
  }
  const float inv_lo = 1.f / l_lo, inv_hi = 1.f / l_hi;
  T* out_lo = static_cast<T*>(p.out) + (q0 + r_lo) * p.ldo + h * D + 2 * qd;
  T* out_hi = static_cast<T*>(p.out) + (q0 + r_hi) * p.ldo + h * D + 2 * qd;
#pragma unroll
  for (int dt = 0; dt < DT; ++dt) {
    if (v_lo) {
      out_lo[dt * 8] = from_float<T>(o[dt][0] * inv_lo);
      out_lo[dt * 8 + 1] = from_float<T>(o[dt][1] * inv_lo);
    }
    if (v_hi) {
      out_hi[dt * 8] = from_float<T>(o[dt][2] * inv_hi);
      out_hi[dt * 8 + 1] = from_float<T>(o[dt][3] * inv_hi);
    }
  }
}

template <typename T, int D>
void run_flash(const Params& p, Stream s) {
  using L = FlashLayout<T, D>;
  static const bool configured = [] {
    CASCADE_CUDA_CHECK(cudaFuncSetAttribute(flash_kernel<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(L::bytes)));
    return true;
  }();
  (void)configured;
  const dim3 grid(unsigned((p.nq + L::BQ - 1) / L::BQ), unsigned(p.heads));
  flash_kernel<T, D><<<grid, 128, L::bytes, s>>>(p);
  CASCADE_CUDA_LAUNCH_CHECK();
}

}  // namespace cascade::ops::gpu::attn
