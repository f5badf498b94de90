// Angles follow Hugging Face's float32 arithmetic (inv_freq in float32, angle = float(pos) * inv_freq
// rounded to float32) so that long positions round the same way; cos/sin are then exact.
#include "ops/rotary.h"

#include <cmath>

namespace cascade::ops {

Rotary::Rotary(RotaryStyle style, int64_t dim, double theta, const RopeScaling& s) : style_(style), dim_(dim) {
  if (style_ == RotaryStyle::None) return;
  const int64_t half = dim_ / 2;
  inv_freq_.resize(size_t(half));
  for (int64_t i = 0; i < half; ++i) {
    float f = 1.0f / std::pow(float(theta), float(2 * i) / float(dim_));
    if (s.type == "linear") {
      f = f / float(s.factor);
    } else if (s.type == "llama3") {
      const double low_wl = s.original_max_position / s.low_freq_factor;
      const double high_wl = s.original_max_position / s.high_freq_factor;
      const double wl = 2 * M_PI / f;
      if (wl > low_wl) {
        f = float(f / s.factor);
      } else if (wl >= high_wl) {
        const double smooth = (s.original_max_position / wl - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        f = float((1 - smooth) * f / s.factor + smooth * f);
      }
    }
    inv_freq_[size_t(i)] = f;
  }
}

void Rotary::apply(float* x, int64_t n, int64_t ld, int64_t heads, int64_t hd, const int64_t* positions) const {
  if (style_ == RotaryStyle::None) return;
  const int64_t half = dim_ / 2;
#pragma omp parallel for if (n * heads * hd > 65536)
  for (int64_t t = 0; t < n; ++t) {
    std::vector<float> c(static_cast<size_t>(half)), s(static_cast<size_t>(half));
    for (int64_t i = 0; i < half; ++i) {
      const float ang = float(positions[t]) * inv_freq_[size_t(i)];
      c[size_t(i)] = float(std::cos(double(ang)));
      s[size_t(i)] = float(std::sin(double(ang)));
    }
    for (int64_t h = 0; h < heads; ++h) {
      float* v = x + t * ld + h * hd;
      for (int64_t i = 0; i < half; ++i) {
        const int64_t a = style_ == RotaryStyle::Interleaved ? 2 * i : i;
        const int64_t b = style_ == RotaryStyle::Interleaved ? 2 * i + 1 : i + half;
        const float xa = v[a], xb = v[b];
        v[a] = xa * c[size_t(i)] - xb * s[size_t(i)];
        v[b] = xb * c[size_t(i)] + xa * s[size_t(i)];
      }
    }
  }
}

}  // namespace cascade::ops
