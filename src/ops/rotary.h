// Rotary position embedding on the leading rotary_dim dimensions of each head, in GPT-J's
// interleaved-pair layout or the half-split layout of GPT-NeoX and Llama.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace cascade {

enum class RotaryStyle { None, Interleaved, Half };  // GPT-J pairs (2i, 2i+1); NeoX/Llama halves

struct RopeScaling {
  std::string type = "default";  // default | linear | llama3
  double factor = 1.0, low_freq_factor = 1.0, high_freq_factor = 4.0;
  double original_max_position = 8192;
};

namespace ops {

class Rotary {
 public:
  Rotary() = default;
  // Inverse frequencies as HF computes them (float32) for the leading `dim` dimensions of each head,
  // base theta, scaled.
  Rotary(RotaryStyle style, int64_t dim, double theta, const RopeScaling& scaling);
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

}  // namespace ops
}  // namespace cascade
