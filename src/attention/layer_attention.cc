#include "attention/layer_attention.h"

#include "core/error.h"

namespace cascade {

std::vector<std::unique_ptr<GpuLayerAttention>> AttentionFactory::make_gpu(const std::vector<GpuAttentionContext>&) const {
  check_gpu();
  fail("this attention method has no GPU implementation: use --device cpu for it");
}

void AttentionFactory::check_gpu() const { fail("this attention method runs on the CPU only: use --device cpu for it"); }

}  // namespace cascade
