// Token-embedding gather, learned positions and the KV-cache row scatter on the GPU (the CPU does
// these inline: a row copy per token, ops::add_inplace of the position row, a row copy into its cache).
#include "ops/cuda_common.cuh"
#include "ops/cuda_ops.h"

namespace cascade::ops::gpu {

namespace {

template <typename T>
__global__ void gather_kernel(const T* src, int64_t lds, const int32_t* ids, int64_t n, int64_t width, T* dst,
                              int64_t ldd) {
  const int64_t total = n * width;
  for (int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; g < total; g += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = g / width, j = g % width;
    dst[t * ldd + j] = src[int64_t(ids[t]) * lds + j];
  }
}

template <typename T>
__global__ void positions_kernel(const T* positions, const int64_t* pos, int64_t offset, int64_t n, int64_t d, T* h) {
  const int64_t total = n * d;
  for (int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; g < total; g += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = g / d, j = g % d;
    h[g] = from_float<T>(to_float(h[g]) + to_float(positions[(pos[t] + offset) * d + j]));
  }
}

template <typename T>
__global__ void scatter_kernel(const T* src, int64_t lds, int64_t n, int64_t width, const int64_t* rows, T* dst,
                               int64_t ldd) {
  const int64_t total = n * width;
  for (int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; g < total; g += int64_t(gridDim.x) * blockDim.x) {
    const int64_t t = g / width, j = g % width;
    dst[rows[t] * ldd + j] = src[t * lds + j];
  }
}

unsigned grid_for(int64_t n) { return unsigned(std::min<int64_t>((n + 255) / 256, 65536)); }

}  // namespace

void gather_rows(DType t, const void* src, int64_t lds, const int32_t* ids, int64_t n, int64_t width, void* dst,
                 int64_t ldd, Stream s) {
  if (n == 0) return;
  dispatch_dtype(t, [&](auto tag) {
    using T = decltype(tag);
    gather_kernel<T><<<grid_for(n * width), 256, 0, s>>>(static_cast<const T*>(src), lds, ids, n, width,
                                                         static_cast<T*>(dst), ldd);
  });
  CASCADE_CUDA_LAUNCH_CHECK();
}

void embed(DType t, const void* table, const int32_t* ids, int64_t n, int64_t e, void* out, Stream s) {
  gather_rows(t, table, e, ids, n, e, out, e, s);
}

void add_positions(DType t, const void* positions, const int64_t* pos, int64_t offset, int64_t n, int64_t d, void* h,
                   Stream s) {
  if (n == 0) return;
  dispatch_dtype(t, [&](auto tag) {
    using T = decltype(tag);
    positions_kernel<T><<<grid_for(n * d), 256, 0, s>>>(static_cast<const T*>(positions), pos, offset, n, d,
                                                        static_cast<T*>(h));
  });
  CASCADE_CUDA_LAUNCH_CHECK();
}

void scatter_rows(DType t, const void* src, int64_t lds, int64_t n, int64_t width, const int64_t* rows, void* dst,
                  int64_t ldd, Stream s) {
  if (n == 0) return;
  dispatch_dtype(t, [&](auto tag) {
    using T = decltype(tag);
    scatter_kernel<T><<<grid_for(n * width), 256, 0, s>>>(static_cast<const T*>(src), lds, n, width, rows,
                                                          static_cast<T*>(dst), ldd);
  });
  CASCADE_CUDA_LAUNCH_CHECK();
}

}  // namespace cascade::ops::gpu
