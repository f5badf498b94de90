// select/gpu_selection.h for a build without CUDA: the same functions, each a cascade::Error, so that
// callers need no #ifdef (gpu_selection_available() is false).
#ifndef CASCADE_WITH_CUDA
#include "core/error.h"
#include "select/gpu_selection.h"

namespace cascade::select::gpu {

namespace {
[[noreturn]] void no_cuda() {
  fail(
      "the GPU selection needs the CUDA backend: this build has none (configure with "
      "-DCASCADE_WITH_CUDA=ON)");
}
}  // namespace

struct DeviceFeatures::Impl {};

DeviceFeatures::DeviceFeatures() = default;
DeviceFeatures::~DeviceFeatures() = default;
DeviceFeatures::DeviceFeatures(DeviceFeatures&&) noexcept = default;
DeviceFeatures& DeviceFeatures::operator=(DeviceFeatures&&) noexcept = default;
int64_t DeviceFeatures::T() const { return 0; }
int64_t DeviceFeatures::d() const { return 0; }
Precision DeviceFeatures::precision() const { return Precision::f64; }
double DeviceFeatures::ms_normalize() const { return 0.0; }
std::vector<double> DeviceFeatures::download() const { no_cuda(); }

bool gpu_selection_available() { return false; }

DeviceFeatures normalize_device(const float*, int64_t, int64_t, Similarity, Precision) { no_cuda(); }
DeviceFeatures normalize_host(const float*, int64_t, int64_t, Similarity, Precision) { no_cuda(); }
std::vector<double> gram_block(const DeviceFeatures&, int64_t, int64_t) { no_cuda(); }
GpuSelection run_full(const DeviceFeatures&, const Options&, const GpuOptions&, const Selection*) {
  no_cuda();
}
GpuSelection run_cascade(const DeviceFeatures&, const Selection&, const Options&, const GpuOptions&) {
  no_cuda();
}

}  // namespace cascade::select::gpu
#endif
