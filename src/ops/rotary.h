// Rotary position embedding on the leading rotary_dim dimensions of each head, in GPT-J's
// interleaved-pair layout or the half-split layout of GPT-NeoX and Llama.
#pragma once
#include <cstdint>
#include <vector>

#include "arch/arch_spec.h"

namespace cascade::ops {

class Rotary {
 public:
  Rotary() = default;
  explicit Rotary(const ArchSpec& spec);  // inverse frequencies as HF computes them (float32), scaled
  bool enabled() const { return style_ != RotaryStyle::None; }
  // x: [n, heads, head_dim] with row stride ld (floats between tokens); positions[n].
  void apply(float* x, int64_t n, int64_t ld, int64_t heads, int64_t head_dim, const int64_t* positions) const;
  // What the GPU twin (ops/rotary_cuda.cu) needs to compute the same angles.
  RotaryStyle style() const { return style_; }
  int64_t dim() const { return dim_; }
  const std::vector<float>& inv_freq() const { return inv_freq_; }

 private:
  RotaryStyle style_ = RotaryStyle::None;
  int64_t dim_ = 0;
  std::vector<float> inv_freq_;  // [dim/2]
};

}  // namespace cascade::ops
