// Host entry points of the CUDA ops (src/ops/*_cuda.cu), each the twin of a CPU op in this folder.
// No CUDA header is needed to include this: pointers are raw device pointers, the stream is the
// runtime's opaque cudaStream_t (forward-declared), and the element type of activations and
// weights is a runtime DType (F32, F16 or BF16). Every op accumulates in float32. The CPU-only build
// compiles none of these (callers reach them only after cuda::require_gpu()).
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/norm.h"
#include "ops/rotary.h"

struct CUstream_st;

namespace cascade::ops::gpu {

using Stream = CUstream_st*;

// ---- norm (ops::norm) --------------------------------------------------------------------------
// Rows of h [n, d] (contiguous). When add is not null, first h += add (rounded to the dtype, written
// back: the fused residual add), then y = norm(h). gamma/beta are float32 [d] (beta null for RMSNorm
// or a LayerNorm without bias). y may alias h.
struct NormArgs {
  DType t = DType::F32;
  NormKind kind = NormKind::LayerNorm;
  void* h = nullptr;
  const void* add = nullptr;
  const float* gamma = nullptr;
  const float* beta = nullptr;
  double eps = 1e-5;
  int64_t n = 0, d = 0;
  void* y = nullptr;
};
void norm(const NormArgs& a, Stream s);

// ---- elementwise (ops::add_inplace) ------------------------------------------------------------
// y[i] += x[i] (x2 null), or y[i] += x[i] + x2[i] (the parallel residual's two branches), n values.
void add(DType t, void* y, const void* x, const void* x2, int64_t n, Stream s);
// Copies n values of dtype t converted to float32 (logits come back as float32).
void to_f32(DType t, const void* x, float* y, int64_t n, Stream s);

// ---- convert (ops::convert) -------------------------------------------------------------------
// src: packed [rows, cols] in dtype `from`, on the device; element (r, c) is written in dtype `to`
// at dst[r * ld + c], or at dst[c * ld + r] when transposed. F32, F16 and BF16 both ways.
void convert(DType from, const void* src, int64_t rows, int64_t cols, DType to, void* dst, int64_t ld, bool transpose,
             Stream s);

// ---- activation (ops::activation) --------------------------------------------------------------
// Non-GLU: x = act(x). GLU: x = act(x) * up (x holds the gate projection).
void activation(DType t, Activation a, void* x, const void* up, int64_t n, Stream s);

// ---- rotary (ops::Rotary::apply) ---------------------------------------------------------------
// x: [n, heads, head_dim] with row stride ld (elements), rotated in place; pos: device int64 [n];
// inv_freq: device float32 [rotary_dim / 2], the same values as ops::Rotary's.
struct RotaryArgs {
  DType t = DType::F32;
  RotaryStyle style = RotaryStyle::None;
  int64_t rotary_dim = 0;
  const float* inv_freq = nullptr;
  void* x = nullptr;
  int64_t n = 0, ld = 0, heads = 0, head_dim = 0;
  const int64_t* pos = nullptr;
};
void rotary(const RotaryArgs& a, Stream s);

// ---- embedding ---------------------------------------------------------------------------------
// out[i, :] = table[ids[i], :] (e columns); ids: device int32 [n].
void embed(DType t, const void* table, const int32_t* ids, int64_t n, int64_t e, void* out, Stream s);
// The same with row strides: dst[i * ldd + j] = src[ids[i] * lds + j] for j < width (ADA's
// representatives' K and V rows out of the fused Q/K/V projection).
void gather_rows(DType t, const void* src, int64_t lds, const int32_t* ids, int64_t n, int64_t width, void* dst,
                 int64_t ldd, Stream s);
// dst[rows[i] * ldd + j] = src[i * lds + j] for j < width (K and V rows into their cache rows, read
// from the device, so a captured decoding step does not depend on its position); rows: device int64 [n].
void scatter_rows(DType t, const void* src, int64_t lds, int64_t n, int64_t width, const int64_t* rows, void* dst,
                  int64_t ldd, Stream s);
// h[i, :] += positions[pos[i] + offset, :] (learned positions); pos: device int64 [n].
void add_positions(DType t, const void* positions, const int64_t* pos, int64_t offset, int64_t n, int64_t d, void* h,
                   Stream s);

// ---- linear (ops::linear), through cuBLASLt ----------------------------------------------------
// y[n, out] (row stride ldy, dtype yt) = act(x[n, in] (row stride ldx, dtype t) W^T + bias), W
// [out, in] row-major in dtype t, bias [out] in dtype yt or null, both bias and act in the GEMM
// epilogue. yt is t or F32. F32 runs in full float32 (no TF32); F16/BF16 accumulate in float32.
// act: None, Relu, or GeluTanh (cuBLASLt's GELU, the tanh form; see linear_fuses()).
enum class Epilogue { None, Relu, GeluTanh };
// The epilogue that computes activation a after a linear in dtype t, or None when the activation
// must run as its own kernel: GLU activations, GELU-erf, and GELU in F32 (whose results must match
// the CPU to float32 accuracy; cuBLASLt's GELU is not specified to that).
Epilogue linear_fuses(Activation a, DType t);
struct LinearArgs {
  DType t = DType::F32;
  const void* x = nullptr;
  int64_t ldx = 0, n = 0;
  const void* w = nullptr;
  int64_t in = 0, out = 0;
  const void* bias = nullptr;
  DType yt = DType::F32;
  void* y = nullptr;
  int64_t ldy = 0;
  Epilogue act = Epilogue::None;
};
void linear(const LinearArgs& a, Stream s);
// A GLU feed-forward's first half: y = act(x Wg^T + bg) * (x Wu^T + bu) for a GLU activation (SiluGlu,
// GeluTanhGlu), each product rounded to t as linear() writes it and the activation as activation()
// computes it. `gate` holds x, Wg, bg and y (yt = t, no epilogue); up_w and up_bias have its shapes. A
// decoding step's few 16-bit rows read both weights in one pass (ops/gemv_cuda.cu); other calls run the
// two linears and the activation, with `scratch` [n, out] holding x Wu^T + bu. y's rows contiguous
// (gate.ldy = gate.out).
struct GluArgs {
  LinearArgs gate;
  const void* up_w = nullptr;
  const void* up_bias = nullptr;
  Activation act = Activation::SiluGlu;
  void* scratch = nullptr;
};
void linear_glu(const GluArgs& a, Stream s);

// ---- token NLL (ops::token_nll) ---------------------------------------------------------------
// out[r] = -log softmax(logits[r, :])[targets[r]] (float64) for r < rows; logits float32 [rows, vocab],
// targets device int32 [rows].
void token_nll(const float* logits, int64_t rows, int64_t vocab, const int32_t* targets, double* out, Stream s);

// ---- attention (ops::attention) ----------------------------------------------------------------
// softmax(q k^T * scale) v per head, causal by position (key j visible to query i iff
// k_pos[j] <= q_pos[i]), grouped-query heads (query head h reads kv head h / (heads / kv_heads)).
// Flash-style: one pass over key tiles with an online softmax. keys_sorted (k_pos nondecreasing,
// true for a KV cache and for ADA's sorted representatives) lets a query tile stop at the first
// key tile past its last position. Every query must see at least one key.
// Head sizes with a kernel: 64, 80, 96, 128, 256 (tensor-core tiles for F16/BF16 prefill), and any
// size up to 256 through the general kernel (F32, decoding, odd sizes).
bool attention_supports(int64_t head_dim);
// The tensor-core tile kernel takes batches of at least this many queries; fewer go to the general
// kernel (whose reads of a masked key's row never reach the output).
inline constexpr int64_t kTileMinQueries = 16;
void attention(const AttentionArgs& a, Stream s);

}  // namespace cascade::ops::gpu
