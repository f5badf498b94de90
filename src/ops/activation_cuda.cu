// Feed-forward activations (GLU fused: act(gate) * up in one pass), the residual adds and the
// float32 widening of logits. Elementwise, grid-stride. CPU twins: ops/activation.cc, ops/linear.cc
// (add_inplace).
#include "ops/cuda_common.cuh"
#include "ops/cuda_ops.h"

namespace cascade::ops::gpu {

namespace {

template <typename T>
__global__ void activation_kernel(Activation a, T* x, const T* up, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float v = to_float(x[i]);
    float r;
    switch (a) {
      case Activation::GeluTanh: r = gelu_tanh(v); break;
      case Activation::GeluErf: r = gelu_erf(v); break;
      case Activation::Relu: r = v > 0.f ? v : 0.f; break;
      default: r = glu(a, v, to_float(up[i])); break;  // SiluGlu, GeluTanhGlu
    }
    x[i] = from_float<T>(r);
  }
}

template <typename T>
__global__ void add_kernel(T* y, const T* x, const T* x2, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float b = x2 ? to_float(x[i]) + to_float(x2[i]) : to_float(x[i]);
    y[i] = from_float<T>(to_float(y[i]) + b);
  }
}

template <typename T>
__global__ void to_f32_kernel(const T* x, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = to_float(x[i]);
}

unsigned grid_for(int64_t n) {
  const int64_t b = (n + 255) / 256;
  return unsigned(b < 65536 ? b : 65536);
}

}  // namespace

void activation(DType t, Activation a, void* x, const void* up, int64_t n, Stream s) {
  if (n == 0) return;
  dispatch_dtype(t, [&](auto tag) {
    using T = decltype(tag);
    activation_kernel<T><<<grid_for(n), 256, 0, s>>>(a, static_cast<T*>(x), static_cast<const T*>(up), n);
  });
  CASCADE_CUDA_LAUNCH_CHECK();
}

void add(DType t, void* y, const void* x, const void* x2, int64_t n, Stream s) {
  if (n == 0) return;
  dispatch_dtype(t, [&](auto tag) {
    using T = decltype(tag);
    add_kernel<T><<<grid_for(n), 256, 0, s>>>(static_cast<T*>(y), static_cast<const T*>(x), static_cast<const T*>(x2), n);
  });
  CASCADE_CUDA_LAUNCH_CHECK();
}

void to_f32(DType t, const void* x, float* y, int64_t n, Stream s) {
  if (n == 0) return;
  dispatch_dtype(t, [&](auto tag) {
    using T = decltype(tag);
    to_f32_kernel<T><<<grid_for(n), 256, 0, s>>>(static_cast<const T*>(x), y, n);
  });
  CASCADE_CUDA_LAUNCH_CHECK();
}

}  // namespace cascade::ops::gpu
