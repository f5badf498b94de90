// LayerNorm and RMSNorm over the last dimension, as Hugging Face computes them in float32.
#pragma once
#include <cstdint>

namespace cascade {

enum class NormKind { LayerNorm, RMSNorm };

namespace ops {

// y[n, d] = norm(x[n, d]) (rows contiguous) with gain gamma [d] and bias beta [d] (null: none, as
// RMSNorm); y may alias x.
void norm(NormKind kind, const float* gamma, const float* beta, double eps, const float* x, int64_t n, int64_t d, float* y);

}  // namespace ops
}  // namespace cascade
