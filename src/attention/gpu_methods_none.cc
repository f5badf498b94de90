// The CPU-only build's GPU twins of the attention methods (the CUDA build compiles
// attention/*_cuda.cu instead). The decoder never reaches them there: making a GPU decoder fails first.
#ifndef CASCADE_WITH_CUDA
#include "attention/ada_attention.h"
#include "attention/attention_tap.h"
#include "attention/exact_attention.h"
#include "attention/kv_press.h"
#include "core/error.h"
#include "cuda/runtime.h"

namespace cascade {

std::vector<std::unique_ptr<GpuLayerAttention>> ExactAttentionFactory::make_gpu(const std::vector<GpuAttentionContext>&) const {
  cuda::require_gpu();
  fail("--device cuda: this build has no CUDA backend");
}

std::vector<std::unique_ptr<GpuLayerAttention>> AdaAttentionFactory::make_gpu(const std::vector<GpuAttentionContext>&) const {
  check_gpu();
  cuda::require_gpu();
  fail("--device cuda: this build has no CUDA backend");
}

std::vector<std::unique_ptr<GpuLayerAttention>> AttentionTap::make_gpu(const std::vector<GpuAttentionContext>&) const {
  check_gpu();
  cuda::require_gpu();
  fail("--device cuda: this build has no CUDA backend");
}

std::vector<std::unique_ptr<GpuLayerAttention>> KvPressFactory::make_gpu(const std::vector<GpuAttentionContext>&) const {
  cuda::require_gpu();
  fail("--device cuda: this build has no CUDA backend");
}

std::vector<double> press::scores_on_gpu(Method m, const Context&, int64_t, const Params&, int64_t) {
  cuda::require_gpu();
  fail(method_name(m), " on the GPU: this build has no CUDA backend");
}

}  // namespace cascade
#endif
