// The peer methods' scores from a layer's Q and K already on the device (attention/kv_press_scores_cuda.cu).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "attention/kv_press_scores.h"

namespace cascade::press {

// Float32 rows after rotary: q [n, ldq] holding the query heads from column 0, k [n, ldk] the KV heads;
// v [n, ldv] the values (read by expected-attention only; may be null otherwise).
struct DeviceQK {
  const float* q = nullptr;
  int64_t ldq = 0;
  const float* k = nullptr;
  int64_t ldk = 0;
  const float* v = nullptr;
  int64_t ldv = 0;
};

// scores(m, ...) with shape's n, heads, kv_heads, head_dim, scale and rotary (its q, k and v unused),
// the attention weights computed on stream st; panel_rows > 0 bounds the query rows per GEMM (tests),
// 0 chooses. knorm brings K back to the host; expected-attention runs on the device but for each
// head's d x d rotation of its query statistics (press::rotated_statistics, on the host).
std::vector<double> scores_device(Method m, const DeviceQK& x, const Context& shape, int64_t n_kept, const Params& p,
                                  cudaStream_t st, int64_t panel_rows = 0);

}  // namespace cascade::press
