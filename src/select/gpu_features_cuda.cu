// select/gpu_selection.h, the features: z normalised on the device (one block per row, float64 sums,
// the rule of select/normalize.cc) in the precision of the Gram that will read them (f16-certified:
// float64 rows and their fp16 rounding).
#include <algorithm>
#include <climits>
#include <memory>

#include "core/error.h"
#include "cuda/context.h"
#include "cuda/runtime.h"
#include "select/gpu_selection_internal.cuh"

namespace cascade::select::gpu {

using internal::EventTimer;
using internal::normalize_rows;

DeviceFeatures::DeviceFeatures() = default;
DeviceFeatures::~DeviceFeatures() = default;
DeviceFeatures::DeviceFeatures(DeviceFeatures&&) noexcept = default;
DeviceFeatures& DeviceFeatures::operator=(DeviceFeatures&&) noexcept = default;
int64_t DeviceFeatures::T() const { return impl_ ? impl_->T : 0; }
int64_t DeviceFeatures::d() const { return impl_ ? impl_->d : 0; }
Precision DeviceFeatures::precision() const { return impl_ ? impl_->precision : Precision::f64; }
double DeviceFeatures::ms_normalize() const { return impl_ ? impl_->ms_normalize : 0.0; }

std::vector<double> DeviceFeatures::download() const {
  CASCADE_CHECK(impl_, "DeviceFeatures::download: empty features");
  cudaStream_t s = cuda::context().stream;
  const size_t n = size_t(impl_->T * impl_->d);
  if (keeps_float64(impl_->precision))
    return impl_->z64.download(n, s);
  const std::vector<float> f = impl_->z32.download(n, s);
  return std::vector<double>(f.begin(), f.end());
}

bool gpu_selection_available() { return cuda::gpu_available(); }

DeviceFeatures normalize_device(const float* x_device, int64_t T, int64_t d, Similarity similarity,
                                Precision precision) {
  CASCADE_CHECK(T >= 1 && d >= 1, "selection features must be [T, d] with T, d >= 1, got [", T, ", ", d, "]");
  CASCADE_CHECK(T < INT32_MAX, "selection features: T = ", T, " is too large");
  cuda::Context& ctx = cuda::context();
  DeviceFeatures f;
  f.impl_ = std::make_unique<DeviceFeatures::Impl>();
  auto& im = *f.impl_;
  im.T = T;
  im.d = d;
  im.precision = precision;
  EventTimer timer;
  const bool centre = similarity == Similarity::pearson;
  if (keeps_float64(precision)) {
    im.z64 = cuda::Buffer<double>(size_t(T * d));
    if (precision == Precision::f16_certified) im.z16 = cuda::Buffer<__half>(size_t(T * d));
    timer.start(ctx.stream);
    normalize_rows<double><<<unsigned(T), 256, 0, ctx.stream>>>(x_device, d, centre, im.z64.data());
    if (precision == Precision::f16_certified) {
      CASCADE_CUDA_LAUNCH_CHECK();
      const int64_t n = T * d;
      internal::to_half<<<unsigned(std::min<int64_t>((n + 255) / 256, 132 * 16)), 256, 0, ctx.stream>>>(
          im.z64.data(), n, im.z16.data());
    }
  } else {
    im.z32 = cuda::Buffer<float>(size_t(T * d));
    timer.start(ctx.stream);
    normalize_rows<float><<<unsigned(T), 256, 0, ctx.stream>>>(x_device, d, centre, im.z32.data());
  }
  CASCADE_CUDA_LAUNCH_CHECK();
  im.ms_normalize = timer.stop(ctx.stream);
  return f;
}

DeviceFeatures normalize_host(const float* x_host, int64_t T, int64_t d, Similarity similarity,
                              Precision precision) {
  CASCADE_CHECK(T >= 1 && d >= 1, "selection features must be [T, d] with T, d >= 1, got [", T, ", ", d, "]");
  cuda::Context& ctx = cuda::context();
  auto x = cuda::Buffer<float>::from_host(std::span<const float>(x_host, size_t(T * d)), ctx.stream);
  return normalize_device(x.data(), T, d, similarity, precision);
}

}  // namespace cascade::select::gpu
