// Attention on the GPU: checks the arguments and picks a kernel (attention_cuda_kernel.cuh). The
// tensor-core tile kernel runs F16/BF16 batches of 16 queries or more at head sizes 64, 80, 96, 128
// and 256 with 16-byte aligned rows; fewer F16/BF16 queries (decoding) at head sizes 64, 128 and 256
// without a bias, window or own key run the decoding kernel (each key read once for its group's query
// heads); everything else (F32, other head sizes up to 256, ADA's variants while decoding) runs the
// general kernel. Both split over keys when the queries alone would not fill the GPU. The plain
// causal case (causal_by_index) goes to cuDNN's fused attention where it applies
// (ops/attention_cudnn.h), as AttentionArgs::kernel says.
// CPU twin: ops/attention.cc.
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "cuda/context.h"
#include "ops/attention_cuda_launch.cuh"
#include "ops/attention_cudnn.h"
#include "ops/cuda_common.cuh"

namespace cascade::ops::gpu {

namespace {

template <typename T, int MT>
void run_flash_for(int64_t hd, const attn::Params& p, Stream s) {
  switch (hd) {
    case 64: attn::run_flash<T, 64, MT>(p, s); return;
    case 80: attn::run_flash<T, 80, MT>(p, s); return;
    case 96: attn::run_flash<T, 96, MT>(p, s); return;
    case 128: attn::run_flash<T, 128, MT>(p, s); return;
    default: attn::run_flash<T, 256, 1>(p, s); return;
  }
}

// Two m-tiles a warp (128-query blocks) halve the shared-memory reads per product but halve the
// blocks and fit 2 an SM instead of 3 (registers): on the H100 (BENCHMARKS.md) they
// lost 6% at 512 blocks (OPT-6.7B's heads, T = 2048) and gained 9% at 2048 (Llama-8B's, T = 8192).
// Taken from kFlashWideBlocksPerSm blocks an SM on, head sizes up to 128.
constexpr int64_t kFlashWideBlocksPerSm = 8;
bool flash_wide(const attn::Params& p) {
  return p.head_dim <= 128 && (p.nq + 127) / 128 * p.heads >= kFlashWideBlocksPerSm * cuda::context().sm_count;
}

template <typename T>
void run_split_for(int64_t hd, const attn::Params& p, Stream s) {
  if (hd <= 64) attn::run_split<T, 2>(p, s);
  else if (hd <= 96) attn::run_split<T, 3>(p, s);
  else if (hd <= 128) attn::run_split<T, 4>(p, s);
  else attn::run_split<T, 8>(p, s);
}

// Splits over keys for the general kernel: enough blocks for ~16 per SM (a full SM: 64 warps) when the
// (query, head) pairs alone give fewer than 2 per SM, with at least kMinKeys keys a split (16 a
// warp), so that the merge stays small next to the keys read. The partial sums then need fewer than
// 18 * SMs units, which bounds the context's scratch (cuda::Context::attention_partials).
constexpr int64_t kMinKeys = 64;
void plan_splits(attn::Params& p) {
  cuda::Context& ctx = cuda::context();
  const int64_t sms = ctx.sm_count, units = p.nq * p.heads;
  p.splits = 1;
  if (units < 2 * sms) p.splits = std::max<int64_t>(1, std::min((p.nk + kMinKeys - 1) / kMinKeys, (16 * sms + units - 1) / units));
  p.chunk = (p.nk + p.splits - 1) / p.splits;
  p.splits = (p.nk + p.chunk - 1) / p.chunk;  // no empty trailing split
  if (p.splits > 1) {
    const size_t need = size_t(units * p.splits * (p.head_dim + 2));
    CASCADE_CHECK(need <= ctx.attention_partials.size(), "attention: split scratch too small (", need, " floats)");
    p.partial = ctx.attention_partials.data();
  }
}

bool has_tile_kernel(int64_t hd) { return hd == 64 || hd == 80 || hd == 96 || hd == 128 || hd == 256; }

// The decoding kernel's case: 16-bit rows read in 16-byte pieces (head sizes 64, 128, 256; aligned rows),
// at most 8 query heads a key/value group, attention causal by position alone.
bool decode_kernel_fits(const AttentionArgs& a) {
  return a.dtype != DType::F32 && (a.head_dim == 64 || a.head_dim == 128 || a.head_dim == 256) &&
         a.heads / a.kv_heads <= 8 && !a.bias && !a.own_mask && a.window <= 0 && aligned16(a.q) && aligned16(a.k) &&
         aligned16(a.v) && a.ldq % 8 == 0 && a.ldkv % 8 == 0;
}

// Its splits over keys: as many blocks as the GPU holds at once (one wave: a second, partial wave of
// blocks would leave most SMs waiting on a few) when the (query, group) pairs alone give fewer, each
// range at least kMinKeys keys, and the partial sums within the context's scratch.
void plan_decode_splits(attn::Params& p, int blocks_per_sm) {
  cuda::Context& ctx = cuda::context();
  const int64_t units = p.nq * p.kv_heads, want = int64_t(blocks_per_sm) * ctx.sm_count / units;
  const int64_t room = int64_t(ctx.attention_partials.size()) / (p.nq * p.heads * (p.head_dim + 2));
  p.splits = std::max<int64_t>(1, std::min({want, (p.nk + kMinKeys - 1) / kMinKeys, room}));
  p.chunk = (p.nk + p.splits - 1) / p.splits;
  p.splits = (p.nk + p.chunk - 1) / p.chunk;  // no empty trailing split
  p.partial = p.splits > 1 ? ctx.attention_partials.data() : nullptr;
}

template <typename T, int D, int GM>
void decode_with(attn::Params& p, Stream s) {
  plan_decode_splits(p, attn::decode_blocks_per_sm<T, D, GM>());
  attn::run_decode<T, D, GM>(p, s);
}

template <typename T>
void run_decode_for(attn::Params& p, Stream s) {
  const bool wide = p.heads / p.kv_heads > 4;
  switch (p.head_dim) {
    case 64: wide ? decode_with<T, 64, 8>(p, s) : decode_with<T, 64, 4>(p, s); return;
    case 128: wide ? decode_with<T, 128, 8>(p, s) : decode_with<T, 128, 4>(p, s); return;
    default: wide ? decode_with<T, 256, 8>(p, s) : decode_with<T, 256, 4>(p, s); return;
  }
}

}  // namespace

bool attention_supports(int64_t head_dim) { return head_dim > 0 && head_dim <= 256; }

void attention(const AttentionArgs& a, Stream s) {
  if (a.nq == 0) return;
  CASCADE_CHECK(attention_supports(a.head_dim), "attention on the GPU: head size ", a.head_dim, " (at most 256)");
  CASCADE_CHECK(a.kv_heads > 0 && a.heads % a.kv_heads == 0, "attention: ", a.heads, " heads over ", a.kv_heads, " kv heads");
  CASCADE_CHECK(a.nk > 0, "attention: no keys");
  attn::Params p;
  static_cast<AttentionArgs&>(p) = a;
  CASCADE_CHECK(!a.own_mask || (a.own_k && a.own_v && a.ldown >= a.kv_heads * a.head_dim), "attention: own-key rows missing");
  CASCADE_CHECK(!a.bias || a.ldbias >= a.nk, "attention: bias rows of ", a.ldbias, " for ", a.nk, " keys");
  if (a.kernel != AttentionKernel::cascade && cudnn_sdpa::applies(a)) {
    std::string why;
    if (cudnn_sdpa::run(a, s, &why)) return;
    CASCADE_CHECK(a.kernel != AttentionKernel::cudnn, "--attention-kernel cudnn: ", why);
  }
  const bool tile = a.dtype != DType::F32 && a.nq >= kTileMinQueries && has_tile_kernel(a.head_dim) && aligned16(a.q) &&
                    aligned16(a.k) && aligned16(a.v) && a.ldq % 8 == 0 && a.ldkv % 8 == 0;
  dispatch_dtype(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!std::is_same_v<T, float>) {
      if (tile) {
        if (flash_wide(p)) run_flash_for<T, 2>(a.head_dim, p, s);
        else run_flash_for<T, 1>(a.head_dim, p, s);
        return;
      }
    }
    if constexpr (!std::is_same_v<T, float>) {
      if (decode_kernel_fits(a)) {
        run_decode_for<T>(p, s);
        return;
      }
    }
    plan_splits(p);
    run_split_for<T>(a.head_dim, p, s);
  });
}

}  // namespace cascade::ops::gpu
