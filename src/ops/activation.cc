#include "ops/activation.h"

#include <cmath>

namespace cascade::ops {

namespace {

inline float gelu_tanh(float x) {
  const float c = 0.7978845608028654f;  // sqrt(2/pi)
  return 0.5f * x * (1.f + std::tanh(c * (x + 0.044715f * x * x * x)));
}
inline float gelu_erf(float x) { return 0.5f * x * (1.f + std::erf(x * 0.7071067811865476f)); }
inline float silu(float x) { return x / (1.f + std::exp(-x)); }

}  // namespace

bool is_glu(Activation a) { return a == Activation::SiluGlu || a == Activation::GeluTanhGlu; }

void activation(Activation a, float* x, const float* up, int64_t n) {
#pragma omp parallel for simd if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    switch (a) {
      case Activation::GeluTanh: x[i] = gelu_tanh(x[i]); break;
      case Activation::GeluErf: x[i] = gelu_erf(x[i]); break;
      case Activation::Relu: x[i] = x[i] > 0.f ? x[i] : 0.f; break;
      case Activation::SiluGlu: x[i] = silu(x[i]) * up[i]; break;
      case Activation::GeluTanhGlu: x[i] = gelu_tanh(x[i]) * up[i]; break;
    }
  }
}

}  // namespace cascade::ops
