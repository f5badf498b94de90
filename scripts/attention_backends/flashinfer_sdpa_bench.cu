// FlashInfer's Hopper prefill kernel (its FA3 design: wgmma, TMA, warp specialisation), one causal
// instance per head size, called on the engine's row layout the way the engine would call it: Q
// [T, heads * hd] and K, V [T, kv_heads * hd] (strides per token and per head), diagonal at the bottom
// right. FlashInfer 0.7.4's headers (the flashinfer-python wheel's flashinfer/data: include, CUTLASS,
// CCCL) with the Params struct that its JIT renders from single_prefill_sm90_customize_config.jinja
// for the default variant written out below, since there is no JIT here.
//
// Not part of the engine's build: it measures what FlashInfer would give before the engine depends
// on it (BENCHMARKS.md "GPU attention: our kernel, cuDNN or FlashInfer"). Checked and timed as
// probe_common.h says. One dtype per binary (the Params types are per dtype): build with
// -DPROBE_BF16=1 or 0. Shapes of the other dtype in the arguments are skipped.
//
// Build (sm_90a, about 70 s a head size on one core; device_run.sh's caller builds it off the GPU):
//   bash build_flashinfer_probe.sh FLASHINFER_DATA OUT_DIR   (both dtypes)
// Usage: flashinfer_sdpa_bench [T,heads,kv_heads,head_dim,bf16|f16 ...]
#include <flashinfer/attention/hopper/attention_updater.cuh>
#include <flashinfer/attention/hopper/variant_helper.cuh>
#include <flashinfer/attention/hopper/variants.cuh>
#include <flashinfer/cutlass_utils.cuh>
#include <flashinfer/layout.cuh>
#include <flashinfer/math.cuh>
#include <flashinfer/utils.cuh>

#include "probe_common.h"

using namespace flashinfer;

#if PROBE_BF16
using Elem = nv_bfloat16;
#else
using Elem = half;
#endif
using DTypeQ = cutlass_dtype_t<Elem>;
using DTypeKV = cutlass_dtype_t<Elem>;
using DTypeO = cutlass_dtype_t<Elem>;
using IdType = cutlass_dtype_t<int32_t>;

// The rendered config's Params for DefaultAttention<false> (no soft cap): field names and order as
// FlashInfer's kernels read them.
struct Params {
  using DTypeQ = ::DTypeQ;
  using DTypeKV = ::DTypeKV;
  using DTypeO = ::DTypeO;
  using IdType = ::IdType;
  DTypeQ* q_ptr;
  DTypeKV* k_ptr;
  DTypeKV* v_ptr;
  DTypeO* o_ptr;
  float* lse_ptr;
  struct AdditionalParams {
    float* maybe_scale_v;
    double logits_soft_cap;
    double sm_scale;
    double scale_v_scalar;
  } additional_params;
  int64_t q_stride_n, k_stride_n, v_stride_n, o_stride_n;
  int64_t q_stride_h, k_stride_h, v_stride_h, o_stride_h;
  int qo_len, kv_len, head_dim, num_qo_heads, num_kv_heads, group_size, window_left;
  bool causal;
};

#include <flashinfer/attention/hopper/prefill_sm90.cuh>

namespace {

using Variant = DefaultAttention<false>;

template <uint32_t HD>
cudaError_t launch_causal(Params& p, cudaStream_t stream) {
  return SinglePrefillWithKVCacheDispatched<HD, HD, MaskMode::kCausal, /*LEFT_SLIDING_WINDOW=*/false, Variant>(p, stream);
}

void run(cudaStream_t stream, const probe::Shape& s) {
  const float scale = 1.f / std::sqrt(float(s.hd));
  probe::Problem pr(s);
  Params p{};
  p.q_ptr = static_cast<DTypeQ*>(pr.dq);
  p.k_ptr = static_cast<DTypeKV*>(pr.dk);
  p.v_ptr = static_cast<DTypeKV*>(pr.dv);
  p.o_ptr = static_cast<DTypeO*>(pr.dout);
  p.lse_ptr = nullptr;
  p.additional_params = {nullptr, 0.0, double(scale), 1.0};
  p.q_stride_n = p.o_stride_n = s.ldq();
  p.k_stride_n = p.v_stride_n = s.ldkv();
  p.q_stride_h = p.k_stride_h = p.v_stride_h = p.o_stride_h = s.hd;
  p.qo_len = p.kv_len = int(s.T);
  p.head_dim = int(s.hd);
  p.num_qo_heads = int(s.heads);
  p.num_kv_heads = int(s.kv_heads);
  p.group_size = int(s.heads / s.kv_heads);
  p.window_left = -1;
  p.causal = true;
  auto launch = [&] {
    const cudaError_t e = s.hd == 64 ? launch_causal<64>(p, stream)
                          : s.hd == 128 ? launch_causal<128>(p, stream)
                                        : launch_causal<256>(p, stream);
    probe::check(e, "FlashInfer prefill");
  };
  launch();
  probe::check(cudaStreamSynchronize(stream), "first launch");
  const double err = pr.relative_error(scale);
  probe::print_row("flashinfer-sm90", s, probe::median_ms(launch, stream), err);
}

}  // namespace

int main(int argc, char** argv) {
  cudaStream_t stream;
  probe::check(cudaStreamCreate(&stream), "stream");
  for (const auto& s : probe::parse_shapes(argc, argv)) {
    if (s.bf16 != bool(PROBE_BF16)) continue;
    if (s.hd != 64 && s.hd != 128 && s.hd != 256) probe::die("head size must be 64, 128 or 256");
    run(stream, s);
  }
  return 0;
}
