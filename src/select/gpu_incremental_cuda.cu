// select/gpu_incremental.h: a decoding step's greedy decision on the device.

#include <algorithm>
#include <span>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "cuda/context.h"
#include "cuda/element.cuh"
#include "cuda/pool_buffer.h"
#include "select/gpu_incremental.h"
#include "select/gpu_selection_internal.cuh"
#include "select/scan_util.h"

namespace cascade::select::gpu {

namespace {

// (max rho, its index) over rho[0, n) in thread 0, ties to the smallest index (run_full's rule: the
// earliest representative); (-2, -1) when n == 0. Every thread of the block calls it.
__device__ void block_argmax_earliest(const double* __restrict__ rho, int64_t n, double& best, int64_t& best_at) {
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
    best = v;
    best_at = at;
  }
}

// out = (max rho, its index) over rho[0, n) (block_argmax_earliest). One block.
__global__ void argmax_earliest(const double* __restrict__ rho, int64_t n, double* __restrict__ out) {
  double v = 0;
  int64_t at = 0;
  block_argmax_earliest(rho, n, v, at);
  if (threadIdx.x == 0) {
    out[0] = v;
    out[1] = double(at);
  }
}

// The resident steps' state on the device: the representatives' count, the steps since the host's
// last sync, and the last step's decision (is_rep, index).
enum : int { kR = 0, kPending = 1, kIsRep = 2, kIndex = 3, kStateInts = 4 };

// The representatives' rows are kept as the features came, in a dtype R that holds them exactly
// (float32, or the 16-bit compute dtype they were widened from: a quarter of float64's bytes, which
// every decoding step reads), each with its float64 mean and inverse norm (row_stats). A normalised
// component is recomputed where it is read, by the operations normalize_row_block uses, so it is the
// float64 value the prefill's selection read, bit for bit.

// One block: row xr [d] kept at row, its (mean, inv) at stats.
template <typename R>
__device__ void store_row_block(const float* __restrict__ xr, int64_t d, bool centre, R* __restrict__ row,
                                double* __restrict__ stats) {
  double mean, inv;
  internal::row_stats(xr, d, centre, mean, inv);
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) row[i] = cuda::from_float<R>(xr[i]);
  if (threadIdx.x == 0) {
    stats[0] = mean;
    stats[1] = inv;
  }
}

// Block b keeps row cols[b] of x (row b without cols) at rows[b]. One block a row.
template <typename R>
__global__ void store_rows(const float* __restrict__ x, int64_t d, bool centre, const int32_t* __restrict__ cols,
                           R* __restrict__ rows, double* __restrict__ stats) {
  const int64_t b = blockIdx.x, src = cols ? cols[b] : b;
  store_row_block(x + src * d, d, centre, rows + b * d, stats + 2 * b);
}

// The token's row kept at index r (r on the device). One block.
template <typename R>
__global__ void store_resident(const float* __restrict__ x, int64_t d, bool centre, R* __restrict__ rows,
                               double* __restrict__ stats, const int32_t* __restrict__ state) {
  const int64_t r = state[kR];
  store_row_block(x, d, centre, rows + r * d, stats + 2 * r);
}

// The correlation of two kept rows, in lane 0 of the warp: the normalised components' products summed
// lane-strided, then a shuffle reduction (every decision's sums in this one order).
template <typename R>
__device__ double correlation(const R* __restrict__ a, const double* __restrict__ as, const R* __restrict__ b,
                              const double* __restrict__ bs, int64_t d, int lane) {
  const double ma = as[0], ia = as[1], mb = bs[0], ib = bs[1];
  double s = 0.0;
  for (int64_t k = lane; k < d; k += 32)
    s += internal::normalized(cuda::to_float(a[k]), ma, ia) * internal::normalized(cuda::to_float(b[k]), mb, ib);
  for (int o = 16; o > 0; o >>= 1) s += __shfl_down_sync(0xffffffffu, s, o);
  return s;
}

// rho[j * na + i] = <a_i, b_j> for i < na, j < nb, a warp a pair.
template <typename R>
__global__ void correlations(const R* __restrict__ a, const double* __restrict__ as, int64_t na, const R* __restrict__ b,
                             const double* __restrict__ bs, int64_t nb, int64_t d, double* __restrict__ rho) {
  const int64_t w = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5, i = w % na, j = w / na;
  if (j >= nb) return;  // the whole warp: w is the warp's
  const double c = correlation(a + i * d, as + 2 * i, b + j * d, bs + 2 * j, d, int(threadIdx.x & 31));
  if ((threadIdx.x & 31) == 0) rho[j * na + i] = c;
}

// rho[i] = <rows[i], rows[r]> for i < r (r on the device); a warp a row, over the rows' capacity.
template <typename R>
__global__ void rho_resident(const R* __restrict__ rows, const double* __restrict__ stats, int64_t d,
                             const int32_t* __restrict__ state, double* __restrict__ rho) {
  const int64_t r = state[kR], i = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  if (i >= r) return;  // the whole warp: i is the warp's
  const double c = correlation(rows + i * d, stats + 2 * i, rows + r * d, stats + 2 * r, d, int(threadIdx.x & 31));
  if ((threadIdx.x & 31) == 0) rho[i] = c;
}

unsigned warps_blocks(int64_t warps) { return unsigned((warps * 32 + 255) / 256); }

// The token's decision, as step() makes it on the host: a representative when its best rho stays
// below reach (theta less detail::reaches' slack), its row then kept (r grows). Logged for the host at
// the step's index since the last sync. One block.
__global__ void decide_resident(const double* __restrict__ rho, double reach, int32_t* state, int32_t* log) {
  const int64_t r = state[kR];  // read by every thread before thread 0 writes (the argmax synchronises)
  double v = 0;
  int64_t at = 0;
  block_argmax_earliest(rho, r, v, at);
  if (threadIdx.x != 0) return;
  const bool rep = !(v >= reach);
  const int32_t index = rep ? int32_t(r) : int32_t(at), k = state[kPending];
  log[2 * k] = rep;
  log[2 * k + 1] = index;
  state[kPending] = k + 1;
  state[kIsRep] = rep;
  state[kIndex] = index;
  if (rep) state[kR] = int32_t(r + 1);
}

// A pass of n tokens, one warp: token i's best candidate among the r representatives before the pass
// (rho_old [n, r]) and the pass's tokens j < i that became representatives (rho_new [n, n]), ties to
// the earliest (every earlier representative comes before the pass's); it is a representative when
// it is token 0 (first) or its best rho stays below `reach` (theta less the slack of
// detail::reaches). is_rep[i] 0/1, best[i] the candidate's index (a representative's index in the
// rows, the pass's tokens after the r earlier ones: r + j) or -1. Lane 0 writes; __syncwarp orders
// its writes before the next token's reads.
__global__ void greedy_pass(const double* __restrict__ rho_old, int64_t r, const double* __restrict__ rho_new, int64_t n,
                            double reach, bool first, int32_t* is_rep, int32_t* best) {
  const int lane = threadIdx.x;
  for (int64_t i = 0; i < n; ++i) {
    double v = -2.0;
    int64_t at = -1;
    for (int64_t c = lane; c < r + i; c += 32) {  // increasing c a lane: a strict > keeps the earliest
      const bool old = c < r;
      if (!old && !is_rep[c - r]) continue;
      const double x = old ? rho_old[i * r + c] : rho_new[i * n + (c - r)];
      if (x > v) {
        v = x;
        at = c;
      }
    }
    for (int o = 16; o > 0; o >>= 1) {
      const double ov = __shfl_down_sync(0xffffffffu, v, o);
      const int64_t oi = __shfl_down_sync(0xffffffffu, at, o);
      if (ov > v || (ov == v && oi >= 0 && (at < 0 || oi < at))) {
        v = ov;
        at = oi;
      }
    }
    if (lane == 0) {
      const bool rep = (first && i == 0) || !(v >= reach);
      is_rep[i] = rep;
      best[i] = rep ? -1 : int32_t(at);
    }
    __syncwarp();
  }
}

}  // namespace

struct DeviceIncremental::Impl {
  double theta = 0;
  bool centre = false;
  DType rows_dtype = DType::F32;
  int64_t d = 0, T = 0, r = 0, cap = 0;
  std::vector<int32_t> reps;  // positions, in order
  // rows [cap, d] in rows_dtype (row r: the token being decided), stats [cap, 2] (mean, inv), rho [cap],
  // best [2]: from the stream-ordered pool, so a prefill's selector (made at every ADA layer's prefill)
  // costs no cudaMalloc.
  cuda::PoolBytes rows, stats, rho, best;
  cuda::PoolBytes pass_rows, pass_stats;  // steps(): the pass's rows [n, d] and stats [n, 2]
  cuda::Buffer<double> pass_rho;          // steps(): rho [n, r] then [n, n]
  cuda::Buffer<int32_t> pass_out;         // steps(): is_rep [n], best [n]
  cuda::Buffer<int32_t> state, log;       // resident steps: the state [kStateInts], the log [2 * log_cap]
  int64_t pending = 0, log_cap = 0;       // resident steps planned since the last sync

  size_t row_bytes() const { return size_t(d) * dtype_size(rows_dtype); }
  template <typename R>
  R* rows_as() {
    return rows.as<R>();
  }
  double* stats_at(int64_t i) { return stats.as<double>() + 2 * i; }

  void reserve(int64_t need) {
    if (need <= cap) return;
    const int64_t c = cuda::grown_capacity(cap, need, 64);
    cudaStream_t s = cuda::context().stream;
    cuda::PoolBytes nr(size_t(c) * row_bytes(), s), ns(size_t(c) * 16, s);
    const int64_t kept = std::min(cap, r + pending);  // resident steps may have appended rows past r
    if (kept) {
      CASCADE_CUDA_CHECK(cudaMemcpyAsync(nr.data(), rows.data(), size_t(kept) * row_bytes(), cudaMemcpyDeviceToDevice, s));
      CASCADE_CUDA_CHECK(cudaMemcpyAsync(ns.data(), stats.data(), size_t(kept) * 16, cudaMemcpyDeviceToDevice, s));
    }
    rows = std::move(nr);  // the old arrays are freed in stream order, after the copies
    stats = std::move(ns);
    rho = cuda::PoolBytes(size_t(c) * 8, s);
    cap = c;
  }
};

DeviceIncremental::DeviceIncremental(const DeviceFeatures& z, const float* x_device, DType rows_dtype, const Selection& sel,
                                     const Options& opts)
    : impl_(std::make_unique<Impl>()) {
  CASCADE_CHECK(opts.rule == Rule::greedy, "decoding on the GPU: rule greedy only");
  CASCADE_CHECK(keeps_float64(z.precision()),
                "decoding on the GPU: float64 features only (f64 or f16-certified), got ",
                precision_name(z.precision()));
  CASCADE_CHECK(sel.T() == z.T(), "prefill selection covers ", sel.T(), " tokens, features ", z.T());
  Impl& m = *impl_;
  m.theta = opts.theta();
  m.centre = opts.similarity == Similarity::pearson;
  m.rows_dtype = rows_dtype;
  cuda::dispatch_dtype(rows_dtype, [](auto) {});  // an unsupported dtype is refused here, not at the first step
  m.d = z.d();
  m.T = z.T();
  m.reps = sel.reps;
  cudaStream_t s = cuda::context().stream;
  m.best = cuda::PoolBytes(2 * sizeof(double), s);
  m.reserve(int64_t(m.reps.size()) + 1);
  if (!m.reps.empty()) {  // idx is freed in stream order, after the copy; the copy from pageable
                          // memory has read m.reps when it returns
    cuda::PoolBytes idx(m.reps.size() * sizeof(int32_t), s);
    CASCADE_CUDA_CHECK(cudaMemcpyAsync(idx.data(), m.reps.data(), idx.bytes(), cudaMemcpyHostToDevice, s));
    cuda::dispatch_dtype(rows_dtype, [&](auto tag) {
      using R = decltype(tag);
      store_rows<R><<<unsigned(m.reps.size()), 256, 0, s>>>(x_device, m.d, m.centre, idx.as<int32_t>(), m.rows_as<R>(),
                                                            m.stats_at(0));
    });
    CASCADE_CUDA_LAUNCH_CHECK();
  }
  m.r = int64_t(m.reps.size());
}

DeviceIncremental::~DeviceIncremental() = default;
DeviceIncremental::DeviceIncremental(DeviceIncremental&&) noexcept = default;
DeviceIncremental& DeviceIncremental::operator=(DeviceIncremental&&) noexcept = default;

int64_t DeviceIncremental::T() const { return impl_->T; }
int64_t DeviceIncremental::bytes() const { return impl_->cap * int64_t(impl_->row_bytes() + 16 + 8); }

IncrementalSelector::Step DeviceIncremental::step(const float* x_device) {
  Impl& m = *impl_;
  CASCADE_CHECK(m.pending == 0, "GPU decoding: resident steps not synchronised before a host step");
  cudaStream_t s = cuda::context().stream;
  m.reserve(m.r + 1);
  cuda::dispatch_dtype(m.rows_dtype, [&](auto tag) {
    using R = decltype(tag);
    R* z = m.rows_as<R>() + m.r * m.d;  // the new token's row, kept if it becomes a representative
    store_rows<R><<<1, 256, 0, s>>>(x_device, m.d, m.centre, nullptr, z, m.stats_at(m.r));
    if (m.r > 0)
      correlations<R><<<warps_blocks(m.r), 256, 0, s>>>(m.rows_as<R>(), m.stats_at(0), m.r, z, m.stats_at(m.r), 1, m.d,
                                                        m.rho.as<double>());
  });
  CASCADE_CUDA_LAUNCH_CHECK();
  argmax_earliest<<<1, 256, 0, s>>>(m.rho.as<double>(), m.r, m.best.as<double>());
  CASCADE_CUDA_LAUNCH_CHECK();
  double best[2];  // (rho, index) of the best representative
  CASCADE_CUDA_CHECK(cudaMemcpyAsync(best, m.best.as<double>(), sizeof best, cudaMemcpyDeviceToHost, s));
  CASCADE_CUDA_CHECK(cudaStreamSynchronize(s));
  const int32_t t = int32_t(m.T++);
  const bool is_rep = t == 0 || !detail::reaches(best[0], m.theta);
  if (is_rep) {
    m.reps.push_back(t);
    ++m.r;
    return {true, t};
  }
  return {false, m.reps[size_t(best[1])]};
}

std::vector<IncrementalSelector::Step> DeviceIncremental::steps(const float* x_device, int64_t n) {
  Impl& m = *impl_;
  CASCADE_CHECK(m.pending == 0, "GPU decoding: resident steps not synchronised before a host pass");
  std::vector<IncrementalSelector::Step> out;
  if (n <= 0) return out;
  cudaStream_t s = cuda::context().stream;
  m.reserve(m.r + n);
  m.pass_rows.reserve(size_t(n) * m.row_bytes(), s);
  m.pass_stats.reserve(size_t(n) * 16, s);
  m.pass_rho.reserve(size_t(n * (m.r + n)));
  m.pass_out.reserve(size_t(2 * n));
  double* rho_old = m.pass_rho.data();  // [n, r]: the pass's tokens against the representatives
  double* rho_new = rho_old + n * m.r;  // [n, n]: against each other
  int32_t* is_rep = m.pass_out.data();
  std::vector<int32_t> h;
  cuda::dispatch_dtype(m.rows_dtype, [&](auto tag) {
    using R = decltype(tag);
    R* z = m.pass_rows.as<R>();
    double* zs = m.pass_stats.as<double>();
    store_rows<R><<<unsigned(n), 256, 0, s>>>(x_device, m.d, m.centre, nullptr, z, zs);
    if (m.r > 0)
      correlations<R><<<warps_blocks(m.r * n), 256, 0, s>>>(m.rows_as<R>(), m.stats_at(0), m.r, z, zs, n, m.d, rho_old);
    correlations<R><<<warps_blocks(n * n), 256, 0, s>>>(z, zs, n, z, zs, n, m.d, rho_new);
    CASCADE_CUDA_LAUNCH_CHECK();
    greedy_pass<<<1, 32, 0, s>>>(rho_old, m.r, rho_new, n, m.theta - kRhoSlack, m.T == 0, is_rep, is_rep + n);
    CASCADE_CUDA_LAUNCH_CHECK();
    h = m.pass_out.download(size_t(2 * n), s);  // the pass's one synchronisation
    // The new representatives' rows join the kept rows, in order.
    std::vector<int32_t> keep;
    for (int64_t i = 0; i < n; ++i)
      if (h[size_t(i)]) keep.push_back(int32_t(i));
    if (!keep.empty()) {
      auto idx = cuda::Buffer<int32_t>::from_host(keep, s);
      const unsigned k = unsigned(keep.size());
      internal::gather_rows<R><<<k, 256, 0, s>>>(z, m.d, idx.data(), m.rows_as<R>() + m.r * m.d);
      internal::gather_rows<double><<<k, 32, 0, s>>>(zs, 2, idx.data(), m.stats_at(m.r));
      CASCADE_CUDA_LAUNCH_CHECK();
      CASCADE_CUDA_CHECK(cudaStreamSynchronize(s));  // idx is freed on return
    }
  });
  const int64_t r0 = m.r;
  std::vector<int32_t> pass_pos(static_cast<size_t>(n));  // position of each of the pass's tokens
  for (int64_t i = 0; i < n; ++i) {
    const int32_t t = int32_t(m.T++);
    pass_pos[size_t(i)] = t;
    if (h[size_t(i)]) {
      m.reps.push_back(t);
      ++m.r;
      out.push_back({true, t});
    } else {
      const int32_t b = h[size_t(n + i)];
      out.push_back({false, b < r0 ? m.reps[size_t(b)] : pass_pos[size_t(b - r0)]});
    }
  }
  return out;
}

void DeviceIncremental::plan_resident(int64_t n) {
  Impl& m = *impl_;
  CASCADE_CHECK(m.T > 0, "GPU decoding: no prefill to continue");
  cudaStream_t s = cuda::context().stream;
  m.reserve(m.r + m.pending + n);
  if (m.state.size() == 0) m.state = cuda::Buffer<int32_t>(kStateInts);
  if (m.pending == 0) {  // the device's count starts from the host's
    const int32_t h[kStateInts] = {int32_t(m.r), 0, -1, -1};
    m.state.upload(std::span<const int32_t>(h, kStateInts), s);
  }
  if (m.pending + n > m.log_cap) {
    const int64_t c = std::max(m.pending + n, std::max<int64_t>(2 * m.log_cap, 64));
    cuda::Buffer<int32_t> nl(size_t(2 * c));
    if (m.pending)
      CASCADE_CUDA_CHECK(cudaMemcpyAsync(nl.data(), m.log.data(), size_t(2 * m.pending) * 4, cudaMemcpyDeviceToDevice, s));
    CASCADE_CUDA_CHECK(cudaStreamSynchronize(s));  // the old log is freed below
    m.log = std::move(nl);
    m.log_cap = c;
  }
  m.pending += n;
}

void DeviceIncremental::step_resident(const float* x_device) {
  Impl& m = *impl_;
  cudaStream_t s = cuda::context().stream;
  cuda::dispatch_dtype(m.rows_dtype, [&](auto tag) {
    using R = decltype(tag);
    store_resident<R><<<1, 256, 0, s>>>(x_device, m.d, m.centre, m.rows_as<R>(), m.stats_at(0), m.state.data());
    rho_resident<R><<<warps_blocks(m.cap), 256, 0, s>>>(m.rows_as<R>(), m.stats_at(0), m.d, m.state.data(),
                                                        m.rho.as<double>());
  });
  CASCADE_CUDA_LAUNCH_CHECK();
  decide_resident<<<1, 256, 0, s>>>(m.rho.as<double>(), m.theta - kRhoSlack, m.state.data(), m.log.data());
  CASCADE_CUDA_LAUNCH_CHECK();
}

const int32_t* DeviceIncremental::decision() const { return impl_->state.data() + kIsRep; }

std::vector<IncrementalSelector::Step> DeviceIncremental::sync_resident() {
  Impl& m = *impl_;
  std::vector<IncrementalSelector::Step> out;
  if (m.pending == 0) return out;
  const std::vector<int32_t> h = m.log.download(size_t(2 * m.pending), cuda::context().stream);
  for (int64_t k = 0; k < m.pending; ++k) {
    const int32_t t = int32_t(m.T++);
    if (h[size_t(2 * k)]) {
      m.reps.push_back(t);
      ++m.r;
      out.push_back({true, t});
    } else {
      out.push_back({false, m.reps[size_t(h[size_t(2 * k + 1)])]});
    }
  }
  m.pending = 0;
  return out;
}

void DeviceIncremental::graph_key(std::vector<uintptr_t>& shape, std::vector<uintptr_t>& buffers) const {
  const Impl& m = *impl_;
  shape.push_back(uintptr_t(m.cap));  // the rho kernel's grid
  for (const void* p : {static_cast<const void*>(m.rows.data()), static_cast<const void*>(m.stats.data()),
                        static_cast<const void*>(m.rho.data()), static_cast<const void*>(m.state.data()),
                        static_cast<const void*>(m.log.data())})
    buffers.push_back(reinterpret_cast<uintptr_t>(p));
}

}  // namespace cascade::select::gpu
