// LayerNorm and RMSNorm over the last dimension, as Hugging Face computes them in float32.
#pragma once
#include <cstdint>

#include "arch/arch_spec.h"
#include "arch/weights.h"

namespace cascade::ops {

// y[n, d] = norm(x[n, d]) (rows contiguous); y may alias x.
void norm(NormKind kind, const Norm& w, double eps, const float* x, int64_t n, int64_t d, float* y);

}  // namespace cascade::ops
