// meta_to_hf_rotary_rows: a row gather; each row (everything after dim 0) is copied whole.
#include "io/rotary_layout.h"

#include <cstring>

#include "core/error.h"

namespace cascade {

Tensor meta_to_hf_rotary_rows(const Tensor& w, int n_heads) {
  CASCADE_CHECK(w.ndim() >= 1 && n_heads > 0, "rotary reordering needs a tensor of rank >= 1 and n_heads > 0 (got shape ",
                w.shape_str(), ", n_heads ", n_heads, ")");
  const int64_t rows = w.dim(0);
  CASCADE_CHECK(rows % n_heads == 0 && (rows / n_heads) % 2 == 0, "rotary reordering: ", rows, " rows is not ", n_heads,
                " heads of an even head size (shape ", w.shape_str(), ")");
  const int64_t hd = rows / n_heads;
  const int64_t width = rows ? w.numel() / rows : 0;
  Tensor out = Tensor::zeros(w.shape());
  for (int64_t h = 0; h < n_heads; ++h) {
    for (int64_t j = 0; j < hd; ++j) {
      const int64_t src = h * hd + (j < hd / 2 ? 2 * j : 2 * (j - hd / 2) + 1);
      std::memcpy(out.data() + (h * hd + j) * width, w.data() + src * width, size_t(width) * sizeof(float));
    }
  }
  return out;
}

}  // namespace cascade
