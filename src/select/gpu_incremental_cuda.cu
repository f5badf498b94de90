// select/gpu_incremental.h: a decoding step's greedy decision on the device.
#include <cublas_v2.h>

#include <algorithm>
#include <vector>

#include "core/error.h"
#include "cuda/context.h"
#include "select/gpu_incremental.h"
#include "select/gpu_selection_internal.cuh"
#include "select/scan_util.h"

namespace cascade::select::gpu {

namespace {

// out = (max rho, its index) over rho[0, n), ties to the smallest index (run_full's rule: the
// earliest representative); (-2, -1) when n == 0. One block.
__global__ void argmax_earliest(const double* __restrict__ rho, int64_t n, double* __restrict__ out) {
  __shared__ double sv[32];
  __shared__ int64_t si[32];
  double v = -2.0;
  int64_t at = -1;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x)  // increasing i: a strict > keeps the earliest
    if (rho[i] > v) {
      v = rho[i];
      at = i;
    }
  const auto better = [](double v1, int64_t i1, double v2, int64_t i2) {
    return v1 > v2 || (v1 == v2 && i1 >= 0 && (i2 < 0 || i1 < i2));
  };
  for (int o = 16; o > 0; o >>= 1) {
    const double ov = __shfl_down_sync(0xffffffffu, v, o);
    const int64_t oi = __shfl_down_sync(0xffffffffu, at, o);
    if (better(ov, oi, v, at)) {
      v = ov;
      at = oi;
    }
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) {
    sv[warp] = v;
    si[warp] = at;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < int(blockDim.x >> 5); ++w)
      if (better(sv[w], si[w], v, at)) {
        v = sv[w];
        at = si[w];
      }
    out[0] = v;
    out[1] = double(at);
  }
}

}  // namespace

struct DeviceIncremental::Impl {
  double theta = 0;
  bool centre = false;
  int64_t d = 0, T = 0, r = 0, cap = 0;
  std::vector<int32_t> reps;  // positions, in order
  cuda::Buffer<double> rows, rho, best;  // [cap, d] (row r: the token being decided), [cap], [2]

  void reserve(int64_t need) {
    if (need <= cap) return;
    const int64_t c = std::max({need, 2 * cap, int64_t(64)});
    cuda::Buffer<double> nr(size_t(c * d));
    cudaStream_t s = cuda::context().stream;
    if (r) CASCADE_CUDA_CHECK(cudaMemcpyAsync(nr.data(), rows.data(), size_t(r * d) * 8, cudaMemcpyDeviceToDevice, s));
    CASCADE_CUDA_CHECK(cudaStreamSynchronize(s));  // the old rows are freed below
    rows = std::move(nr);
    rho = cuda::Buffer<double>(size_t(c));
    cap = c;
  }
};

DeviceIncremental::DeviceIncremental(const DeviceFeatures& z, const Selection& sel, const Options& opts)
    : impl_(std::make_unique<Impl>()) {
  CASCADE_CHECK(opts.rule == Rule::greedy, "decoding on the GPU: rule greedy only");
  CASCADE_CHECK(z.precision() == Precision::f64 || z.precision() == Precision::f16_certified,
                "decoding on the GPU: float64 features only (f64 or f16-certified), got ",
                precision_name(z.precision()));
  CASCADE_CHECK(sel.T() == z.T(), "prefill selection covers ", sel.T(), " tokens, features ", z.T());
  Impl& m = *impl_;
  m.theta = opts.theta();
  m.centre = opts.similarity == Similarity::pearson;
  m.d = z.d();
  m.T = z.T();
  m.reps = sel.reps;
  m.best = cuda::Buffer<double>(2);
  m.reserve(int64_t(m.reps.size()) + 1);
  cudaStream_t s = cuda::context().stream;
  if (!m.reps.empty()) {
    auto idx = cuda::Buffer<int32_t>::from_host(m.reps, s);
    internal::gather_rows<double><<<unsigned(m.reps.size()), 256, 0, s>>>(z.impl()->z64.data(), m.d, idx.data(), m.rows.data());
    CASCADE_CUDA_LAUNCH_CHECK();
    CASCADE_CUDA_CHECK(cudaStreamSynchronize(s));  // idx is freed on return
  }
  m.r = int64_t(m.reps.size());
}

DeviceIncremental::~DeviceIncremental() = default;
DeviceIncremental::DeviceIncremental(DeviceIncremental&&) noexcept = default;
DeviceIncremental& DeviceIncremental::operator=(DeviceIncremental&&) noexcept = default;

int64_t DeviceIncremental::T() const { return impl_->T; }
int64_t DeviceIncremental::bytes() const { return impl_->cap * (impl_->d + 1) * 8; }

IncrementalSelector::Step DeviceIncremental::step(const float* x_device) {
  Impl& m = *impl_;
  cuda::Context& ctx = cuda::context();
  cudaStream_t s = ctx.stream;
  m.reserve(m.r + 1);
  double* z = m.rows.data() + m.r * m.d;  // the new token's row, kept if it becomes a representative
  internal::normalize_rows<double><<<1, 256, 0, s>>>(x_device, m.d, m.centre, z);
  CASCADE_CUDA_LAUNCH_CHECK();
  if (m.r > 0) {
    const double one = 1.0, zero = 0.0;
    CASCADE_CUBLAS_CHECK(cublasDgemv(ctx.blas, CUBLAS_OP_T, int(m.d), int(m.r), &one, m.rows.data(), int(m.d), z, 1,
                                     &zero, m.rho.data(), 1));
  }
  argmax_earliest<<<1, 256, 0, s>>>(m.rho.data(), m.r, m.best.data());
  CASCADE_CUDA_LAUNCH_CHECK();
  const std::vector<double> best = m.best.download(2, s);  // (rho, index) of the best representative
  const int32_t t = int32_t(m.T++);
  const bool is_rep = t == 0 || !detail::reaches(best[0], m.theta);
  if (is_rep) {
    m.reps.push_back(t);
    ++m.r;
    return {true, t};
  }
  return {false, m.reps[size_t(best[1])]};
}

}  // namespace cascade::select::gpu
