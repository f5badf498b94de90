// ops::convert on the GPU: the weights' dtype conversion after their stored bytes were copied to the
// device. One thread per element, reads coalesced; the transposed writes are strided (GPT-2's Conv1D
// weights only, once at load).
#include <algorithm>

#include "ops/cuda_common.cuh"
#include "ops/cuda_ops.h"

namespace cascade::ops::gpu {

namespace {

template <typename From, typename To>
__global__ void convert_kernel(const From* src, int64_t rows, int64_t cols, To* dst, int64_t ld, bool transpose) {
  const int64_t total = rows * cols;
  for (int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; g < total; g += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = g / cols, c = g % cols;
    dst[transpose ? c * ld + r : r * ld + c] = from_float<To>(to_float(src[g]));
  }
}

}  // namespace

void convert(DType from, const void* src, int64_t rows, int64_t cols, DType to, void* dst, int64_t ld, bool transpose,
             Stream s) {
  if (rows * cols == 0) return;
  const unsigned grid = unsigned(std::min<int64_t>((rows * cols + 255) / 256, 65536));
  dispatch_dtype(from, [&](auto from_tag) {
    dispatch_dtype(to, [&](auto to_tag) {
      using F = decltype(from_tag);
      using T = decltype(to_tag);
      convert_kernel<F, T><<<grid, 256, 0, s>>>(static_cast<const F*>(src), rows, cols, static_cast<T*>(dst), ld, transpose);
    });
  });
  CASCADE_CUDA_LAUNCH_CHECK();
}

}  // namespace cascade::ops::gpu
