// Internals of the GPU selection shared by its files (gpu_features_cuda.cu: normalisation;
// gpu_selection_cuda.cu: Gram panels, rounds, cascade; gpu_incremental_cuda.cu: decoding): the
// normalisation and gather kernels, the event timer and DeviceFeatures' storage. CUDA code only.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/buffer.h"
#include "select/gpu_selection.h"

namespace cascade::select::gpu {

namespace internal {

// Sum over the block, returned to every thread. red: 32 doubles of shared memory.
__device__ inline double block_sum(double v, double* red) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();  // red may still be read from a previous call
  if (lane == 0) red[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < int(blockDim.x >> 5) ? red[lane] : 0.0;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
    if (lane == 0) red[0] = v;
  }
  __syncthreads();
  return red[0];
}

// One block: the mean (0 for cosine) and the inverse norm of xr - mean (0 at norm 0), every thread
// getting them. Sums in float64 as normalize_row(); a constant row sums exactly, so it centres to
// exactly 0. The one statement of a row's normalisation: normalize_row_block writes it out, decoding's
// selector (gpu_incremental_cuda.cu) recomputes it from the row and these two numbers, bit for bit.
__device__ inline void row_stats(const float* __restrict__ xr, int64_t d, bool centre, double& mean, double& inv) {
  __shared__ double red[32];
  mean = 0.0;
  if (centre) {
    double s = 0.0;
    for (int64_t i = threadIdx.x; i < d; i += blockDim.x) s += double(xr[i]);
    mean = block_sum(s, red) / double(d);
  }
  double sq = 0.0;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
    const double v = double(xr[i]) - mean;
    sq += v * v;
  }
  sq = block_sum(sq, red);
  inv = sq > 0.0 ? 1.0 / sqrt(sq) : 0.0;
}

// A normalised component: (x - mean) * inv, in float64.
__device__ __forceinline__ double normalized(double x, double mean, double inv) { return (x - mean) * inv; }

// One block: zr = (xr - mean) / ||xr - mean|| (row_stats).
template <typename Z>
__device__ void normalize_row_block(const float* __restrict__ xr, int64_t d, bool centre, Z* __restrict__ zr) {
  double mean, inv;
  row_stats(xr, d, centre, mean, inv);
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) zr[i] = Z(normalized(double(xr[i]), mean, inv));
}

// One block per row t: z_t = the normalised x_t (normalize_row_block).
template <typename Z>
__global__ void normalize_rows(const float* __restrict__ x, int64_t d, bool centre, Z* __restrict__ z) {
  normalize_row_block(x + int64_t(blockIdx.x) * d, d, centre, z + int64_t(blockIdx.x) * d);
}

// out[j, :] = z[cols[j], :] for j < n; one block per row.
template <typename Z>
__global__ void gather_rows(const Z* __restrict__ z, int64_t d, const int32_t* __restrict__ cols,
                            Z* __restrict__ out) {
  const Z* src = z + int64_t(cols[blockIdx.x]) * d;
  Z* dst = out + int64_t(blockIdx.x) * d;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) dst[i] = src[i];
}

// Bytes of one feature component in the Gram's input (f16-certified: its fp16 copy) and of one Gram
// entry (the GEMM's output: float64 for f64, else fp32).
inline size_t elem_size(Precision p) {
  return p == Precision::f64 ? sizeof(double) : p == Precision::f16_certified ? sizeof(__half) : sizeof(float);
}
inline size_t gram_elem_size(Precision p) { return p == Precision::f64 ? sizeof(double) : sizeof(float); }

// z16 = fp16(z64), round to nearest even (certified_bound's u and eta assume it).
__global__ inline void to_half(const double* __restrict__ z, int64_t n, __half* __restrict__ out) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = __double2half(z[i]);
}

// Device time between two events on the stream.
class EventTimer {
 public:
  EventTimer() {
    CASCADE_CUDA_CHECK(cudaEventCreate(&a_));
    CASCADE_CUDA_CHECK(cudaEventCreate(&b_));
  }
  ~EventTimer() {
    cudaEventDestroy(a_);
    cudaEventDestroy(b_);
  }
  void start(cudaStream_t s) { CASCADE_CUDA_CHECK(cudaEventRecord(a_, s)); }
  double stop(cudaStream_t s) {
    CASCADE_CUDA_CHECK(cudaEventRecord(b_, s));
    CASCADE_CUDA_CHECK(cudaEventSynchronize(b_));
    float ms = 0;
    CASCADE_CUDA_CHECK(cudaEventElapsedTime(&ms, a_, b_));
    return double(ms);
  }

 private:
  cudaEvent_t a_ = nullptr, b_ = nullptr;
};

}  // namespace internal

struct DeviceFeatures::Impl {
  int64_t T = 0, d = 0;
  Precision precision = Precision::f64;
  cuda::Buffer<double> z64;
  cuda::Buffer<float> z32;
  cuda::Buffer<__half> z16;  // f16-certified: the GEMM's input; z64 holds the rows it is certified against
  double ms_normalize = 0;
  // The rows the Gram's GEMM reads.
  const void* data() const {
    if (precision == Precision::f64) return z64.data();
    if (precision == Precision::f16_certified) return z16.data();
    return z32.data();
  }
  const void* row(int64_t t) const {
    return static_cast<const char*>(data()) + size_t(t * d) * internal::elem_size(precision);
  }
};

}  // namespace cascade::select::gpu
