// select/gpu_selection.h for the CUDA build: the panelled causal Gram / cross-Gram through
// cuBLAS with the edges extracted from each panel, the greedy set in parallel Jacobi rounds, the
// parents, and the exact cascade's iterations (see the header's design note). The features
// (normalisation) are in gpu_features_cuda.cu, the shared kernels in gpu_selection_internal.cuh, this file's
// kernel bodies in gpu_selection_kernels.cuh.
//
// Layout of the data on the device:
//   z      [T, d] row-major (float64, float32, or for f16-certified float64 and an fp16 copy), unit rows
//          or zero rows
//   panel  [rows, n] row-major (float64 for f64, else fp32): panel[i, j] = <z_{row0+i}, zc_j>, zc the
//          column rows (z itself for the full Gram, the gathered rows of a column set otherwise);
//          cuBLAS sees it column-major as the n x rows matrix Zc^T Zr
//   edges  COO lists (t, s, rho) with s < t and rho >= theta - slack, in no particular order
//          (f16-certified: rho is the fp32 Gram value where it certifies the edge, else the float64 one)
//   uncertain  f16-certified: the pairs (t, s) whose fp32 value lies within certified_bound(d) of the
//          threshold, recomputed in float64 after each causal_cross
//   state  [T] uint8: 0 undecided, 1 in the set, 2 out
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <mutex>
#include <numeric>

#include "core/error.h"
#include "cuda/context.h"
#include "cuda/runtime.h"
#include "select/gpu_selection_internal.cuh"
#include "select/gpu_selection_kernels.cuh"
#include "select/scan_util.h"

namespace cascade::select::gpu {

using internal::elem_size;
using internal::gram_elem_size;
using internal::EventTimer;
using internal::gather_rows;

namespace {

// ---- host helpers ---------------------------------------------------------------------------------

unsigned blocks_for(int64_t n, int threads) {
  return unsigned(std::max<int64_t>(1, (n + threads - 1) / threads));
}
unsigned grid_stride_blocks(int64_t n) { return unsigned(std::min<int64_t>(blocks_for(n, 256), 132 * 16)); }

// C (n x rows, column-major, ld ld) = A^T B: A the column rows [n, d], B the panel rows [rows, d], in
// the Gram's precision (f16-certified: fp16 inputs on the tensor cores, fp32 accumulation and output).
void gram_gemm(cublasHandle_t h, Precision p, const void* A, const void* B, int n, int rows, int d, void* C,
               int ld) {
  if (p == Precision::f64) {
    const double one = 1.0, zero = 0.0;
    CASCADE_CUBLAS_CHECK(cublasDgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, n, rows, d, &one, static_cast<const double*>(A),
                                     d, static_cast<const double*>(B), d, &zero, static_cast<double*>(C), ld));
    return;
  }
  const float one = 1.0f, zero = 0.0f;
  const cudaDataType_t in = p == Precision::f16_certified ? CUDA_R_16F : CUDA_R_32F;
  const cublasComputeType_t ct = p == Precision::f32    ? CUBLAS_COMPUTE_32F_PEDANTIC
                                 : p == Precision::tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                        : CUBLAS_COMPUTE_32F;
  CASCADE_CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, n, rows, d, &one, A, in, d, B, in, d, &zero, C,
                                    CUDA_R_32F, ld, ct, CUBLAS_GEMM_DEFAULT));
}

template <typename T>
void upload_vec(cuda::Buffer<T>& b, const std::vector<T>& v, cudaStream_t s) {
  b.reserve(std::max<size_t>(1, v.size()));
  if (!v.empty()) b.upload(std::span<const T>(v), s);
}

}  // namespace

// ---- the selection --------------------------------------------------------------------------------

namespace {

// Device memory kept from call to call (grown, never shrunk), so that a call's time is its kernels'
// and not cudaMalloc's: the panel (up to 1 GiB), the gathered columns, the edge list, the states,
// and f16-certified's uncertain pairs and parent candidates. One selection at a time uses it (the lock
// in run_full / run_cascade).
struct Workspace {
  std::mutex lock;
  cuda::Buffer<unsigned char> panel, colmat;
  cuda::Buffer<int32_t> dcols, pos, parent;
  cuda::Buffer<unsigned long long> count, key;
  cuda::Buffer<int32_t> et, es;
  cuda::Buffer<double> er;
  int64_t cap = 0;
  cuda::Buffer<uint8_t> st, out_flag, blocked;
  cuda::Buffer<int32_t> ut, us, ncand;
  int64_t ucap = 0;
  cuda::Buffer<uint8_t> cand;
};

Workspace& workspace() {
  static Workspace* w = new Workspace;  // never destroyed: it may outlive the CUDA context at exit
  return *w;
}

// One selection call: the edge list, the panels, the rounds.
class Runner {
 public:
  Runner(const DeviceFeatures::Impl& z, const Options& opts, const GpuOptions& gopts, Selection& out,
         GpuStats& stats)
      : z_(z),
        ctx_(cuda::context()),
        s_(ctx_.stream),
        out_(out),
        stats_(stats),
        w_(workspace()),
        panel_(w_.panel),
        count_(w_.count),
        et_(w_.et),
        es_(w_.es),
        er_(w_.er),
        cap_(w_.cap),
        st_(w_.st),
        out_flag_(w_.out_flag),
        blocked_(w_.blocked) {
    thr_ = opts.theta() - rho_slack(z.precision);
    certified_ = z.precision == Precision::f16_certified;
    bound_ = certified_bound(z.d);
    int64_t pr = gopts.panel_rows;
    if (pr <= 0) {
      pr = std::max<int64_t>(256, ((z.T + 7) / 8 + 255) / 256 * 256);
      const int64_t budget = (int64_t(1) << 30) / int64_t(gram_elem_size(z.precision)) / std::max<int64_t>(1, z.T);
      pr = std::min(pr, std::max<int64_t>(128, budget));
    }
    pr_ = std::min({pr, z.T, int64_t(65535)});  // a panel's rows are a grid's y dimension
    stats.panel_rows = pr_;
    count_.reserve(kCounts);
    CASCADE_CUDA_CHECK(cudaMemsetAsync(count_.data(), 0, kCounts * sizeof(unsigned long long), s_));
    const int64_t want = std::max<int64_t>(int64_t(1) << 16, 4 * z.T);
    if (cap_ < want) grow_edges(want);
    if (certified_ && w_.ucap < want) grow_uncertain(want);
    st_.reserve(size_t(z.T));
    out_flag_.reserve(size_t(z.T));
    blocked_.reserve(size_t(z.T));
  }

  // Rows [lo, T) against the sorted column positions cols, whose rows are colmat (gathered, [n, d]) and
  // whose positions are dcols on the device; every panel's edges are appended. Returns nothing; adds
  // the rectangles evaluated to out.cost.computed and the panels to out.trace when record.
  void causal_cross(int64_t lo, const std::vector<int32_t>& cols, const void* colmat, const int32_t* dcols,
                    bool record) {
    const int64_t T = z_.T, d = z_.d;
    const size_t es = gram_elem_size(z_.precision);
    // The panel's leading dimension is padded to 32 elements: cuBLAS's tensor-core kernels need
    // aligned rows of C (an odd ld, as b - 1 columns give, measured 30% to 60% slower).
    const int64_t n_max = std::lower_bound(cols.begin(), cols.end(), int32_t(T - 1)) - cols.begin();
    panel_.reserve(size_t(std::min(pr_, T) * ((n_max + 31) / 32 * 32)) * es);
    const int64_t before = edges_;
    if (certified_)
      CASCADE_CUDA_CHECK(cudaMemsetAsync(count_.data() + kUncertain, 0, sizeof(unsigned long long), s_));
    for (int pass = 0;; ++pass) {
      for (int64_t a = lo; a < T; a += pr_) {
        const int64_t b = std::min(T, a + pr_), rows = b - a;
        // Columns s < b - 1 have a causal row in the panel.
        const int64_t n = std::lower_bound(cols.begin(), cols.end(), int32_t(b - 1)) - cols.begin();
        if (n == 0) continue;
        // The GEMM's column count is padded too, as far as there are columns: cuBLAS runs an odd
        // count (b - 1 columns) on slower kernels. The padding is computed and counted, never read.
        const int64_t ld = (n + 31) / 32 * 32, ng = std::min<int64_t>(ld, int64_t(cols.size()));
        gemm(colmat, z_.row(a), int(ng), int(rows), int(d), int(ld));
        launch_extract(int(n), int(ld), a, int(rows), dcols);
        if (pass > 0) continue;
        out_.cost.computed += rows * ng;
        if (record) out_.trace.cross_panels.push_back({int32_t(a), int32_t(rows), int32_t(ng)});
      }
      // One read of the edge count per call: the list overflows rarely, and then the whole call runs
      // again into a list grown to fit (the GEMMs are recomputed, the counts are not). f16-certified:
      // the same for the uncertain pairs.
      unsigned long long c[kCounts] = {};
      CASCADE_CUDA_CHECK(cudaMemcpyAsync(c, count_.data(), sizeof c, cudaMemcpyDeviceToHost, s_));
      CASCADE_CUDA_CHECK(cudaStreamSynchronize(s_));
      const int64_t total = int64_t(c[0]), uncertain = int64_t(c[kUncertain]);
      if (total <= cap_ && uncertain <= w_.ucap) {
        edges_ = total;
        if (uncertain > 0) recompute(uncertain);
        return;
      }
      if (total > cap_) grow_edges(std::max<int64_t>(2 * cap_, total + total / 2));
      if (uncertain > w_.ucap) grow_uncertain(std::max<int64_t>(2 * w_.ucap, uncertain + uncertain / 2));
      c[0] = (unsigned long long)before;
      c[kUncertain] = 0;
      CASCADE_CUDA_CHECK(cudaMemcpyAsync(count_.data(), c, sizeof c, cudaMemcpyHostToDevice, s_));
    }
  }

  // The greedy set by Jacobi rounds over the current edges; leaves the states in st_. Returns them.
  std::vector<uint8_t> resolve() {
    const int64_t T = z_.T;
    fill_state<<<blocks_for(T, 256), 256, 0, s_>>>(T, st_.data(), out_flag_.data(), blocked_.data());
    CASCADE_CUDA_LAUNCH_CHECK();
    // Planted or real features mostly need 2 to 4 rounds: check after 3, then every kRoundBatch.
    for (int64_t done = 0, batch = 3;; done += batch, batch = kRoundBatch) {
      CASCADE_CUDA_CHECK(cudaMemsetAsync(count_.data() + 1, 0, kRoundBatch * sizeof(unsigned long long), s_));
      for (int k = 0; k < batch; ++k) {
        if (edges_ > 0)
          round_edges<<<grid_stride_blocks(edges_), 256, 0, s_>>>(et_.data(), es_.data(), edges_, st_.data(),
                                                                  out_flag_.data(), blocked_.data());
        round_tokens<<<blocks_for(T, 256), 256, 0, s_>>>(T, st_.data(), out_flag_.data(), blocked_.data(),
                                                         count_.data() + 1 + k);
      }
      CASCADE_CUDA_LAUNCH_CHECK();
      std::vector<unsigned long long> left(kRoundBatch);
      CASCADE_CUDA_CHECK(cudaMemcpyAsync(left.data(), count_.data() + 1,
                                         kRoundBatch * sizeof(unsigned long long), cudaMemcpyDeviceToHost,
                                         s_));
      CASCADE_CUDA_CHECK(cudaStreamSynchronize(s_));
      for (int k = 0; k < batch; ++k)
        if (left[size_t(k)] == 0) {
          stats_.rounds += done + k + 1;
          return st_.download(size_t(T), s_);
        }
      CASCADE_CHECK(done <= T + kRoundBatch, "GPU selection: the rounds did not converge (a bug)");
    }
  }

  // Parents from the final states (st_): representatives their own, others the best representative.
  std::vector<int32_t> parents() {
    const int64_t T = z_.T;
    cuda::Buffer<int32_t>& parent = w_.parent;
    cuda::Buffer<unsigned long long>& key = w_.key;
    parent.reserve(size_t(T));
    key.reserve(size_t(T));
    parent_init<<<blocks_for(T, 256), 256, 0, s_>>>(T, st_.data(), parent.data(), key.data());
    if (edges_ > 0) {
      const unsigned g = grid_stride_blocks(edges_);
      parent_best<<<g, 256, 0, s_>>>(et_.data(), es_.data(), er_.data(), edges_, st_.data(), nullptr, key.data());
      const uint8_t* cand = certified_ ? certify_parents(key) : nullptr;
      parent_pick<<<g, 256, 0, s_>>>(et_.data(), es_.data(), er_.data(), edges_, st_.data(), cand, key.data(),
                                     parent.data());
    }
    CASCADE_CUDA_LAUNCH_CHECK();
    return parent.download(size_t(T), s_);
  }

  int64_t edges() const { return edges_; }

 private:
  // f16-certified: the uncertain pairs of the last causal_cross (count_[kUncertain] of them) decided on
  // their float64 rho; those that reach the threshold are appended to the edges.
  void recompute(int64_t n) {
    if (edges_ + n > cap_) grow_edges(std::max<int64_t>(2 * cap_, edges_ + n));
    EventTimer timer;
    timer.start(s_);
    recompute_uncertain<<<grid_stride_blocks(n * 32), 256, 0, s_>>>(
        z_.z64.data(), z_.d, w_.ut.data(), w_.us.data(), n, thr_, et_.data(), es_.data(), er_.data(),
        count_.data(), (unsigned long long)cap_);
    CASCADE_CUDA_LAUNCH_CHECK();
    stats_.ms_recompute += timer.stop(s_);
    unsigned long long total = 0;
    CASCADE_CUDA_CHECK(cudaMemcpyAsync(&total, count_.data(), sizeof total, cudaMemcpyDeviceToHost, s_));
    CASCADE_CUDA_CHECK(cudaStreamSynchronize(s_));
    edges_ = int64_t(total);
    stats_.recomputed += n;
  }

  // f16-certified, between parent_best (key: the largest stored rho per token) and parent_pick: the
  // candidates within 2E of that maximum, recomputed in float64 where a token has two or more, and the
  // maximum over the candidates again (into key). Returns the candidate flags for parent_pick.
  const uint8_t* certify_parents(cuda::Buffer<unsigned long long>& key) {
    const int64_t T = z_.T;
    const unsigned g = grid_stride_blocks(edges_);
    w_.cand.reserve(size_t(edges_));
    w_.ncand.reserve(size_t(T));
    CASCADE_CUDA_CHECK(cudaMemsetAsync(w_.ncand.data(), 0, size_t(T) * sizeof(int32_t), s_));
    CASCADE_CUDA_CHECK(cudaMemsetAsync(count_.data() + kParentEdges, 0, sizeof(unsigned long long), s_));
    parent_candidates<<<g, 256, 0, s_>>>(et_.data(), es_.data(), er_.data(), edges_, st_.data(), key.data(),
                                         2 * bound_, w_.cand.data(), w_.ncand.data());
    recompute_candidates<<<grid_stride_blocks(edges_ * 32), 256, 0, s_>>>(
        z_.z64.data(), z_.d, et_.data(), es_.data(), er_.data(), edges_, w_.cand.data(), w_.ncand.data(),
        count_.data() + kParentEdges);
    CASCADE_CUDA_CHECK(cudaMemsetAsync(key.data(), 0, size_t(T) * sizeof(unsigned long long), s_));
    parent_best<<<g, 256, 0, s_>>>(et_.data(), es_.data(), er_.data(), edges_, st_.data(), w_.cand.data(),
                                   key.data());
    CASCADE_CUDA_LAUNCH_CHECK();
    unsigned long long n = 0;
    CASCADE_CUDA_CHECK(
        cudaMemcpyAsync(&n, count_.data() + kParentEdges, sizeof n, cudaMemcpyDeviceToHost, s_));
    CASCADE_CUDA_CHECK(cudaStreamSynchronize(s_));
    stats_.recomputed_parent_edges += int64_t(n);
    return w_.cand.data();
  }

  void gemm(const void* A, const void* B, int n, int rows, int d, int ld) {
    gram_gemm(ctx_.blas, z_.precision, A, B, n, rows, d, panel_.data(), ld);
  }

  // Appends the edges of the panel just formed (rows row0 .., n columns at positions dcols, ld ld).
  void launch_extract(int n, int ld, int64_t row0, int rows, const int32_t* dcols) {
    const dim3 grid(blocks_for(n, 256), unsigned(rows));
    if (certified_)
      extract_edges_certified<<<grid, 256, 0, s_>>>(reinterpret_cast<const float*>(panel_.data()), n, ld, row0,
                                                    dcols, thr_, bound_, et_.data(), es_.data(), er_.data(),
                                                    count_.data(), (unsigned long long)cap_, w_.ut.data(),
                                                    w_.us.data(), count_.data() + kUncertain,
                                                    (unsigned long long)w_.ucap);
    else if (z_.precision == Precision::f64)
      extract_edges<double><<<grid, 256, 0, s_>>>(reinterpret_cast<const double*>(panel_.data()), n, ld, row0,
                                                  dcols, thr_, et_.data(), es_.data(), er_.data(),
                                                  count_.data(), (unsigned long long)cap_);
    else
      extract_edges<float><<<grid, 256, 0, s_>>>(reinterpret_cast<const float*>(panel_.data()), n, ld, row0,
                                                 dcols, thr_, et_.data(), es_.data(), er_.data(),
                                                 count_.data(), (unsigned long long)cap_);
    CASCADE_CUDA_LAUNCH_CHECK();
  }

  void grow_edges(int64_t cap) {
    cuda::Buffer<int32_t> t{size_t(cap)}, s{size_t(cap)};
    cuda::Buffer<double> r{size_t(cap)};
    if (edges_ > 0) {
      CASCADE_CUDA_CHECK(
          cudaMemcpyAsync(t.data(), et_.data(), size_t(edges_) * 4, cudaMemcpyDeviceToDevice, s_));
      CASCADE_CUDA_CHECK(
          cudaMemcpyAsync(s.data(), es_.data(), size_t(edges_) * 4, cudaMemcpyDeviceToDevice, s_));
      CASCADE_CUDA_CHECK(
          cudaMemcpyAsync(r.data(), er_.data(), size_t(edges_) * 8, cudaMemcpyDeviceToDevice, s_));
      CASCADE_CUDA_CHECK(cudaStreamSynchronize(s_));  // the old buffers are freed below
    }
    et_ = std::move(t);
    es_ = std::move(s);
    er_ = std::move(r);
    cap_ = cap;
  }

  // The uncertain list is filled and consumed within one causal_cross: grown without copying.
  void grow_uncertain(int64_t cap) {
    w_.ut = cuda::Buffer<int32_t>(size_t(cap));
    w_.us = cuda::Buffer<int32_t>(size_t(cap));
    w_.ucap = cap;
  }

  const DeviceFeatures::Impl& z_;
  cuda::Context& ctx_;
  cudaStream_t s_;
  Selection& out_;
  GpuStats& stats_;
  Workspace& w_;
  double thr_ = 0;
  bool certified_ = false;
  double bound_ = 0;  // f16-certified: certified_bound(d)
  int64_t pr_ = 0;
  cuda::Buffer<unsigned char>& panel_;
  // [0]: edges; [1 ..]: undecided after each round of a batch; [kUncertain], [kParentEdges]: f16-certified's
  cuda::Buffer<unsigned long long>& count_;
  cuda::Buffer<int32_t>&et_, &es_;
  cuda::Buffer<double>& er_;
  int64_t& cap_;
  int64_t edges_ = 0;
  cuda::Buffer<uint8_t>&st_, &out_flag_, &blocked_;
};

const DeviceFeatures::Impl& check_features(const DeviceFeatures& z) {
  CASCADE_CHECK(z.impl() && z.T() >= 1, "GPU selection: empty features");
  return *z.impl();
}

void require_greedy(const Options& opts, const char* what) {
  CASCADE_CHECK(opts.rule == Rule::greedy, "the GPU ", what,
                " implements the greedy rule only: under all-earlier the parent (the best earlier "
                "representative) may lie below theta, outside the edges the Gram panels keep (use the CPU "
                "selection for all-earlier)");
}

void finish(const std::vector<uint8_t>& st, std::vector<int32_t> parent, Selection& out) {
  out.reps.clear();
  for (size_t t = 0; t < st.size(); ++t)
    if (st[t] == kIn) out.reps.push_back(int32_t(t));
  out.parent = std::move(parent);
}

void note_fraction(GpuSelection& res) {
  if (res.sel.cost.computed > 0)
    res.stats.recomputed_fraction = double(res.stats.recomputed) / double(res.sel.cost.computed);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

GpuSelection run_full(const DeviceFeatures& zf, const Options& opts, const GpuOptions& gopts,
                      const Selection* prev) {
  const auto& z = check_features(zf);
  opts.theta();
  require_greedy(opts, "full selection");
  if (prev) detail::check_prev(zf.T(), *prev);
  const auto t0 = std::chrono::steady_clock::now();
  GpuSelection res;
  Selection& out = res.sel;
  GpuStats& stats = res.stats;
  cudaStream_t s = cuda::context().stream;
  std::lock_guard<std::mutex> hold(workspace().lock);
  EventTimer total, phase;
  total.start(s);
  Runner run(z, opts, gopts, out, stats);
  const int64_t T = z.T;
  out.trace.full_gram = true;
  phase.start(s);
  cuda::Buffer<int32_t>& pos = workspace().pos;
  pos.reserve(size_t(T));
  iota_kernel<<<blocks_for(T, 256), 256, 0, s>>>(T, pos.data());
  CASCADE_CUDA_LAUNCH_CHECK();
  std::vector<int32_t> all(static_cast<size_t>(T));
  std::iota(all.begin(), all.end(), 0);
  run.causal_cross(0, all, z.data(), pos.data(), false);
  stats.ms_gram = phase.stop(s);
  phase.start(s);
  const std::vector<uint8_t> st = run.resolve();
  std::vector<int32_t> parent = run.parents();
  stats.ms_rounds = phase.stop(s);
  stats.ms_total = total.stop(s);
  stats.iterations = 1;
  stats.edges = run.edges();
  finish(st, std::move(parent), out);
  out.cost.needed = T * (T - 1) / 2;
  if (prev) detail::fill_diff(prev->reps, out);
  note_fraction(res);
  out.cost.seconds = seconds_since(t0);
  return res;
}

GpuSelection run_cascade(const DeviceFeatures& zf, const Selection& prev, const Options& opts,
                         const GpuOptions& gopts) {
  const auto& z = check_features(zf);
  opts.theta();
  require_greedy(opts, "cascade");
  detail::check_prev(zf.T(), prev);
  const auto t0 = std::chrono::steady_clock::now();
  GpuSelection res;
  Selection& out = res.sel;
  GpuStats& stats = res.stats;
  cudaStream_t s = cuda::context().stream;
  const int64_t T = z.T, d = z.d;
  const size_t esz = elem_size(z.precision);
  std::lock_guard<std::mutex> hold(workspace().lock);
  EventTimer total, phase;
  total.start(s);
  Runner run(z, opts, gopts, out, stats);

  // Gathers the rows of cols (sorted positions) into a [n, d] matrix on the device.
  cuda::Buffer<unsigned char>& colmat = workspace().colmat;
  cuda::Buffer<int32_t>& dcols = workspace().dcols;
  auto gather = [&](const std::vector<int32_t>& cols) {
    upload_vec(dcols, cols, s);
    colmat.reserve(cols.size() * size_t(d) * esz);
    if (z.precision == Precision::f64)
      gather_rows<double><<<unsigned(cols.size()), 256, 0, s>>>(z.z64.data(), d, dcols.data(),
                                                                reinterpret_cast<double*>(colmat.data()));
    else if (z.precision == Precision::f16_certified)
      gather_rows<__half><<<unsigned(cols.size()), 256, 0, s>>>(z.z16.data(), d, dcols.data(),
                                                                reinterpret_cast<__half*>(colmat.data()));
    else
      gather_rows<float><<<unsigned(cols.size()), 256, 0, s>>>(z.z32.data(), d, dcols.data(),
                                                               reinterpret_cast<float*>(colmat.data()));
    CASCADE_CUDA_LAUNCH_CHECK();
  };

  // 1. The causal cross-Gram against the layer below's set.
  phase.start(s);
  out.trace.cross_columns = prev.reps;
  gather(prev.reps);
  run.causal_cross(0, prev.reps, colmat.data(), dcols.data(), true);
  stats.ms_gram += phase.stop(s);

  // 2. Rounds on the graph known so far; spot columns for every token in the set without a column.
  std::vector<char> has_col(size_t(T), 0);
  for (int32_t p : prev.reps) has_col[size_t(p)] = 1;
  std::vector<uint8_t> st;
  for (;;) {
    phase.start(s);
    st = run.resolve();
    stats.ms_rounds += phase.stop(s);
    ++stats.iterations;
    std::vector<int32_t> fresh;
    for (int64_t t = 0; t < T; ++t)
      if (st[size_t(t)] == kIn && !has_col[size_t(t)]) fresh.push_back(int32_t(t));
    if (fresh.empty()) break;
    phase.start(s);
    gather(fresh);
    run.causal_cross(fresh.front() + 1, fresh, colmat.data(), dcols.data(), false);
    stats.ms_gram += phase.stop(s);
    for (int32_t u : fresh) has_col[size_t(u)] = 1;
    out.trace.spot_columns.insert(out.trace.spot_columns.end(), fresh.begin(), fresh.end());
    stats.spot_columns += int64_t(fresh.size());
  }
  phase.start(s);
  std::vector<int32_t> parent = run.parents();
  stats.ms_rounds += phase.stop(s);
  stats.ms_total = total.stop(s);
  stats.edges = run.edges();
  finish(st, std::move(parent), out);
  detail::fill_diff(prev.reps, out);
  // Needed, as the CPU counts it: every causal row of the layer below's columns and of the columns of
  // the additions (a speculative spot column whose token ended out is computed, not needed).
  for (int32_t p : prev.reps) out.cost.needed += T - 1 - p;
  for (int32_t u : out.added) out.cost.needed += T - 1 - u;
  note_fraction(res);
  out.cost.seconds = seconds_since(t0);
  return res;
}

std::vector<double> gram_block(const DeviceFeatures& zf, int64_t rows, int64_t cols) {
  const auto& z = check_features(zf);
  CASCADE_CHECK(rows >= 1 && cols >= 1 && rows <= z.T && cols <= z.T, "gram_block: [", rows, ", ", cols,
                "] outside the features' T = ", z.T);
  cuda::Context& ctx = cuda::context();
  const size_t n = size_t(rows * cols);
  cuda::Buffer<unsigned char> c(n * gram_elem_size(z.precision));
  gram_gemm(ctx.blas, z.precision, z.data(), z.data(), int(cols), int(rows), int(z.d), c.data(), int(cols));
  std::vector<double> out(n);
  if (z.precision == Precision::f64) {
    CASCADE_CUDA_CHECK(cudaMemcpyAsync(out.data(), c.data(), n * sizeof(double), cudaMemcpyDeviceToHost, ctx.stream));
  } else {
    std::vector<float> f(n);
    CASCADE_CUDA_CHECK(cudaMemcpyAsync(f.data(), c.data(), n * sizeof(float), cudaMemcpyDeviceToHost, ctx.stream));
    CASCADE_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
    std::copy(f.begin(), f.end(), out.begin());
  }
  CASCADE_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  return out;
}

}  // namespace cascade::select::gpu
