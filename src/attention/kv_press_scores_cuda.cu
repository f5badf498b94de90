// The peer methods' scores from a layer's Q and K on the GPU. The attention weights that snapkv, tova
// and h2o read (the "received" attention of kv_press_scores.h) are computed here: h2o's cost O(n^2 d)
// float64 work per layer, about a second a layer at n = 8192 on 16 host cores, and bringing Q and K to
// the host cost ~10 ms a layer for every method. Each query head's causal scores Q K^T are one float64
// GEMM per row panel (FP64 tensor cores), then one block per query row turns its row into softmax
// weights and one thread per key adds its column over the panel's rows, in increasing row order as the
// host does. Only the [heads, n] sums come back; the host finishes with scores_from_received. The
// numbers are the host's up to the order of the float64 dot products and of the softmax's denominator
// (~1e-15 relative), so the same entries are kept except at exact ties. Expected-attention runs here
// too (the queries' statistics per head as float64 GEMMs; only each head's d x d covariance comes back,
// for the host's Rbar S Rbar^T, which both devices share); knorm brings back K only; streaming and
// random read nothing.
#include <algorithm>
#include <cmath>
#include <vector>

#include "attention/kv_press_scores.h"
#include "attention/kv_press_scores_cuda.cuh"
#include "core/error.h"
#include "cuda/context.h"
#include "cuda/pool_buffer.h"
#include "cuda/runtime.h"

namespace cascade::press {

namespace {

// Column `col` (one head's q or k slice) of rows [n, ld] float32 to a contiguous float64 [n, hd].
__global__ void widen_head(const float* x, int64_t ld, int64_t col, int64_t n, int64_t hd, double* y) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n * hd) return;
  const int64_t r = i / hd, c = i % hd;
  y[i] = double(x[r * ld + col + c]);
}

// Block per panel row: row i = row0 + blockIdx.x of s (ld ld, entries j <= i valid) becomes its causal
// softmax weights exp(scale s - max) / sum, as received_on_host in kv_press_scores.cc.
__global__ void softmax_rows(double* s, int64_t ld, int64_t row0, double scale) {
  const int64_t i = row0 + blockIdx.x;
  double* row = s + int64_t(blockIdx.x) * ld;
  __shared__ double red[256];
  double mx = -INFINITY;
  for (int64_t j = threadIdx.x; j <= i; j += blockDim.x) mx = fmax(mx, row[j] * scale);
  red[threadIdx.x] = mx;
  __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w /= 2) {
    if (int(threadIdx.x) < w) red[threadIdx.x] = fmax(red[threadIdx.x], red[threadIdx.x + w]);
    __syncthreads();
  }
  mx = red[0];
  __syncthreads();
  double sum = 0;
  for (int64_t j = threadIdx.x; j <= i; j += blockDim.x) sum += (row[j] = exp(row[j] * scale - mx));
  red[threadIdx.x] = sum;
  __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w /= 2) {
    if (int(threadIdx.x) < w) red[threadIdx.x] += red[threadIdx.x + w];
    __syncthreads();
  }
  sum = red[0];
  for (int64_t j = threadIdx.x; j <= i; j += blockDim.x) row[j] /= sum;
}

// Thread per key j: received[j] += w_ij for the panel's rows i >= j, in increasing i.
__global__ void add_columns(const double* w, int64_t ld, int64_t row0, int64_t rows, double* received) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= row0 + rows) return;
  double r = received[j];
  for (int64_t i = std::max(j, row0); i < row0 + rows; ++i) r += w[(i - row0) * ld + j];
  received[j] = r;
}

unsigned blocks(int64_t n, int64_t per) { return unsigned((n + per - 1) / per); }

// Expected-attention's queries before rotary: rows first.. first + m - 1 of q [., ldq] (after rotary)
// rotated back (rotary at the negated positions, in float32 as ops::Rotary::apply computes it: the
// angle rounded to float32, cos and sin in float64 rounded to float32, no fused multiply-add), widened
// to float64 [m, heads * hd]. Block per row.
__global__ void unrotated_queries(const float* q, int64_t ldq, int64_t first, int64_t heads, int64_t hd,
                                  const float* inv_freq, int64_t half, bool interleaved, double* out) {
  const int64_t t = blockIdx.x, width = heads * hd, pos = -(first + t);
  const float* row = q + (first + t) * ldq;
  for (int64_t c = threadIdx.x; c < width; c += blockDim.x) {
    const int64_t e = c % hd;
    const float* v = row + (c - e);
    float y = v[e];
    if (e < 2 * half) {
      const int64_t i = interleaved ? e / 2 : e % half;
      const int64_t a = interleaved ? 2 * i : i, b = interleaved ? 2 * i + 1 : i + half;
      const float ang = __fmul_rn(float(pos), inv_freq[i]);
      const float cs = float(cos(double(ang))), sn = float(sin(double(ang)));
      y = e == a ? __fsub_rn(__fmul_rn(v[a], cs), __fmul_rn(v[b], sn)) : __fadd_rn(__fmul_rn(v[b], cs), __fmul_rn(v[a], sn));
    }
    out[t * width + c] = double(y);
  }
}

// Column j of x [m, ld] from column `col`: its mean over the m rows (block per column), then x's head
// slice centred [m, hd] (grid-stride).
__global__ void column_means(const double* x, int64_t ld, int64_t col, int64_t m, double* mean) {
  __shared__ double red[256];
  double s = 0;
  for (int64_t t = threadIdx.x; t < m; t += blockDim.x) s += x[t * ld + col + blockIdx.x];
  red[threadIdx.x] = s;
  __syncthreads();
  for (int w = blockDim.x / 2; w > 0; w /= 2) {
    if (int(threadIdx.x) < w) red[threadIdx.x] += red[threadIdx.x + w];
    __syncthreads();
  }
  if (threadIdx.x == 0) mean[blockIdx.x] = red[0] / double(m);
}
__global__ void centred(const double* x, int64_t ld, int64_t col, int64_t m, int64_t hd, const double* mean, double* y) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < m * hd; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = x[(i / hd) * ld + col + i % hd] - mean[i % hd];
}

// Thread per key j: rmu . k_j / sqrt(hd) + k_j . ck_j / hd / 2, as the host adds them.
__global__ void expected_logits(const double* k, const double* ck, const double* rmu, int64_t m, int64_t hd, double* s) {
  const int64_t j = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= m) return;
  double lin = 0, quad = 0;
  for (int64_t d = 0; d < hd; ++d) lin += rmu[d] * k[j * hd + d], quad += k[j * hd + d] * ck[j * hd + d];
  s[j] = lin / sqrt(double(hd)) + quad / double(hd) / 2;
}

// Thread per (KV head g, entry j >= n_sink): the group's mean weight times ||v_j||, into out [kv_heads, n].
__global__ void expected_scores(const double* per_head, int64_t m, int64_t group, const float* v, int64_t ldv,
                                int64_t n_sink, int64_t n, int64_t kv_heads, int64_t hd, double* out) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= kv_heads * m) return;
  const int64_t g = i / m, j = i % m;
  double e = 0;
  for (int64_t h = g * group; h < (g + 1) * group; ++h) e += per_head[h * m + j];
  const float* vj = v + (n_sink + j) * ldv + g * hd;
  double vv = 0;
  for (int64_t d = 0; d < hd; ++d) vv += double(vj[d]) * double(vj[d]);
  out[g * n + n_sink + j] = e / double(group) * sqrt(vv);
}

// press::expected_attention on the device: the same steps, the covariance's rotation on the host.
std::vector<double> expected_attention_on_device(const DeviceQK& x, const Context& c, const Params& p, cudaStream_t st) {
  if (c.n <= p.n_sink)
    fail("--attention expected-attention needs a context longer than its ", p.n_sink, " sink tokens, got ", c.n);
  CASCADE_CHECK(x.v, "expected-attention scores need the context's values on the device");
  const int64_t n = c.n, hd = c.head_dim, qd = c.heads * hd, group = c.heads / c.kv_heads, m = n - p.n_sink;
  cuda::PoolBytes q(size_t(m * qd) * 8, st), xc(size_t(m * hd) * 8, st), keys(size_t(m * hd) * 8, st),
      ck(size_t(m * hd) * 8, st), stats(size_t(2 * hd * hd + 2 * hd) * 8, st), per_head(size_t(c.heads * m) * 8, st),
      out(size_t(c.kv_heads * n) * 8, st), freq(size_t(std::max<int64_t>(1, hd)) * 4, st);
  double* q64 = reinterpret_cast<double*>(q.data());
  double* xcd = reinterpret_cast<double*>(xc.data());
  double* kd = reinterpret_cast<double*>(keys.data());
  double* ckd = reinterpret_cast<double*>(ck.data());
  double* cov = reinterpret_cast<double*>(stats.data());
  double *rcov = cov + hd * hd, *mu = rcov + hd * hd, *rmu = mu + hd;
  const bool rot = c.rotary && c.rotary->enabled();
  const int64_t half = rot ? c.rotary->dim() / 2 : 0;
  if (rot)
    CASCADE_CUDA_CHECK(cudaMemcpyAsync(freq.data(), c.rotary->inv_freq().data(), size_t(half) * 4, cudaMemcpyHostToDevice, st));
  unrotated_queries<<<unsigned(m), 256, 0, st>>>(x.q, x.ldq, p.n_sink, c.heads, hd, reinterpret_cast<const float*>(freq.data()),
                                                 half, rot && c.rotary->style() == RotaryStyle::Interleaved, q64);
  const std::vector<double> rbar = mean_rotation(c.rotary, hd, n, p.n_future);
  std::vector<double> h_stats(size_t(hd * hd + hd)), h_rot(size_t(hd * hd + hd));
  cublasHandle_t blas = cuda::context().blas;  // bound to the context's stream, the passes' stream
  const double one = 1.0, zero = 0.0, inv_m = 1.0 / double(m);
  for (int64_t h = 0; h < c.heads; ++h) {
    if (h % group == 0)
      widen_head<<<blocks(m * hd, 256), 256, 0, st>>>(x.k + p.n_sink * x.ldk, x.ldk, (h / group) * hd, m, hd, kd);
    column_means<<<unsigned(hd), 256, 0, st>>>(q64, qd, h * hd, m, mu);
    centred<<<std::min<unsigned>(blocks(m * hd, 256), 4096), 256, 0, st>>>(q64, qd, h * hd, m, hd, mu, xcd);
    // cov = X^T X / m (symmetric: its layout is its transpose's).
    CASCADE_CUBLAS_CHECK(cublasDgemm(blas, CUBLAS_OP_N, CUBLAS_OP_T, int(hd), int(hd), int(m), &inv_m, xcd, int(hd), xcd,
                                     int(hd), &zero, cov, int(hd)));
    CASCADE_CUDA_CHECK(cudaMemcpyAsync(h_stats.data(), cov, size_t(hd * hd) * 8, cudaMemcpyDeviceToHost, st));
    CASCADE_CUDA_CHECK(cudaMemcpyAsync(h_stats.data() + hd * hd, mu, size_t(hd) * 8, cudaMemcpyDeviceToHost, st));
    CASCADE_CUDA_CHECK(cudaStreamSynchronize(st));
    rotated_statistics(rbar, hd, h_stats.data(), h_stats.data() + hd * hd, h_rot.data(), h_rot.data() + hd * hd);
    CASCADE_CUDA_CHECK(cudaMemcpyAsync(rcov, h_rot.data(), size_t(hd * hd) * 8, cudaMemcpyHostToDevice, st));
    CASCADE_CUDA_CHECK(cudaMemcpyAsync(rmu, h_rot.data() + hd * hd, size_t(hd) * 8, cudaMemcpyHostToDevice, st));
    // ck row j = rcov k_j: rcov is symmetric, so its row-major layout serves as column-major.
    CASCADE_CUBLAS_CHECK(
        cublasDgemm(blas, CUBLAS_OP_N, CUBLAS_OP_N, int(hd), int(m), int(hd), &one, rcov, int(hd), kd, int(hd), &zero, ckd, int(hd)));
    double* s = reinterpret_cast<double*>(per_head.data()) + h * m;
    expected_logits<<<blocks(m, 256), 256, 0, st>>>(kd, ckd, rmu, m, hd, s);
    softmax_rows<<<1, 256, 0, st>>>(s, m, m - 1, 1.0);  // one row that sees all m entries, unscaled
  }
  CASCADE_CUDA_CHECK(cudaMemsetAsync(out.data(), 0, out.bytes(), st));
  expected_scores<<<blocks(c.kv_heads * m, 256), 256, 0, st>>>(reinterpret_cast<const double*>(per_head.data()), m, group, x.v,
                                                               x.ldv, p.n_sink, n, c.kv_heads, hd,
                                                               reinterpret_cast<double*>(out.data()));
  CASCADE_CUDA_LAUNCH_CHECK();
  std::vector<double> scores(size_t(c.kv_heads * n));
  CASCADE_CUDA_CHECK(cudaMemcpyAsync(scores.data(), out.data(), scores.size() * 8, cudaMemcpyDeviceToHost, st));
  CASCADE_CUDA_CHECK(cudaStreamSynchronize(st));
  double top = -INFINITY;  // the sinks above everything, as the host sets them
  for (int64_t g = 0; g < c.kv_heads; ++g)
    for (int64_t j = p.n_sink; j < n; ++j) top = std::max(top, scores[size_t(g * n + j)]);
  for (int64_t g = 0; g < c.kv_heads; ++g)
    for (int64_t j = 0; j < p.n_sink; ++j) scores[size_t(g * n + j)] = top + 1;
  return scores;
}

// Per query head, the attention of query rows [from, n) summed per key ([heads * n], on the host).
std::vector<double> received_on_device(const DeviceQK& x, const Context& shape, int64_t from, cudaStream_t st,
                                       int64_t panel_rows) {
  const int64_t n = shape.n, hd = shape.head_dim, group = shape.heads / shape.kv_heads, m = n - from;
  // A panel of 2^25 float64 (256 MiB) unless asked otherwise.
  const int64_t P = panel_rows > 0 ? std::min(panel_rows, m) : std::clamp<int64_t>((int64_t(1) << 25) / n, 1, m);
  cuda::PoolBytes q(size_t(m * hd) * 8, st), k(size_t(n * hd) * 8, st), s(size_t(P * n) * 8, st),
      received(size_t(shape.heads * n) * 8, st);
  CASCADE_CUDA_CHECK(cudaMemsetAsync(received.data(), 0, received.bytes(), st));
  double* qd = reinterpret_cast<double*>(q.data());
  double* kd = reinterpret_cast<double*>(k.data());
  double* sd = reinterpret_cast<double*>(s.data());
  const double one = 1.0, zero = 0.0;
  cublasHandle_t blas = cuda::context().blas;  // bound to the context's stream, the passes' stream
  for (int64_t h = 0; h < shape.heads; ++h) {
    double* rec = reinterpret_cast<double*>(received.data()) + h * n;
    widen_head<<<blocks(m * hd, 256), 256, 0, st>>>(x.q + from * x.ldq, x.ldq, h * hd, m, hd, qd);
    widen_head<<<blocks(n * hd, 256), 256, 0, st>>>(x.k, x.ldk, (h / group) * hd, n, hd, kd);
    for (int64_t row0 = from; row0 < n; row0 += P) {
      const int64_t rows = std::min(P, n - row0), cols = row0 + rows;
      // s [rows, n] row-major = Q[row0 .. row0 + rows) K[0 .. cols)^T: in cuBLAS's column-major terms
      // s^T (cols x rows, ld n) = K^T' Q' with K and Q read as column-major [hd, .] matrices.
      CASCADE_CUBLAS_CHECK(cublasDgemm(blas, CUBLAS_OP_T, CUBLAS_OP_N, int(cols), int(rows), int(hd), &one, kd, int(hd),
                                       qd + (row0 - from) * hd, int(hd), &zero, sd, int(n)));
      softmax_rows<<<unsigned(rows), 256, 0, st>>>(sd, n, row0, shape.scale);
      add_columns<<<blocks(cols, 256), 256, 0, st>>>(sd, n, row0, rows, rec);
    }
  }
  CASCADE_CUDA_LAUNCH_CHECK();
  std::vector<double> per_head(size_t(shape.heads * n));
  CASCADE_CUDA_CHECK(cudaMemcpyAsync(per_head.data(), received.data(), per_head.size() * 8, cudaMemcpyDeviceToHost, st));
  CASCADE_CUDA_CHECK(cudaStreamSynchronize(st));
  return per_head;
}

}  // namespace

// Rows [n, width] of a float32 device matrix with row stride ld, to the host.
std::vector<float> download_rows(const float* src, int64_t ld, int64_t n, int64_t width, cudaStream_t st) {
  std::vector<float> out(size_t(n * width));
  CASCADE_CUDA_CHECK(cudaMemcpy2DAsync(out.data(), size_t(width) * 4, src, size_t(ld) * 4, size_t(width) * 4, size_t(n),
                                       cudaMemcpyDeviceToHost, st));
  CASCADE_CUDA_CHECK(cudaStreamSynchronize(st));
  return out;
}

std::vector<double> scores_device(Method m, const DeviceQK& x, const Context& shape, int64_t n_kept, const Params& p,
                                  cudaStream_t st, int64_t panel_rows) {
  const int64_t from = received_from(m, shape, p);
  if (from >= 0) return scores_from_received(m, shape, received_on_device(x, shape, from, st, panel_rows), p);
  if (m == Method::expected_attention) return expected_attention_on_device(x, shape, p, st);
  Context c = shape;
  std::vector<float> k;
  if (m == Method::knorm) {  // K alone comes back
    k = download_rows(x.k, x.ldk, shape.n, shape.kv_heads * shape.head_dim, st);
    c.k = k.data();
  }
  return scores(m, c, n_kept, p);
}

std::vector<double> scores_on_gpu(Method m, const Context& c, int64_t n_kept, const Params& p, int64_t panel_rows) {
  cuda::require_gpu();
  const cudaStream_t st = cuda::context().stream;
  const int64_t qn = c.n * c.heads * c.head_dim, kn = c.n * c.kv_heads * c.head_dim;
  cuda::PoolBytes q(size_t(qn) * 4, st), k(size_t(kn) * 4, st), v(size_t(c.v ? kn : 1) * 4, st);
  CASCADE_CUDA_CHECK(cudaMemcpyAsync(q.data(), c.q, size_t(qn) * 4, cudaMemcpyHostToDevice, st));
  CASCADE_CUDA_CHECK(cudaMemcpyAsync(k.data(), c.k, size_t(kn) * 4, cudaMemcpyHostToDevice, st));
  if (c.v) CASCADE_CUDA_CHECK(cudaMemcpyAsync(v.data(), c.v, size_t(kn) * 4, cudaMemcpyHostToDevice, st));
  const DeviceQK x{reinterpret_cast<const float*>(q.data()), c.heads * c.head_dim,
                   reinterpret_cast<const float*>(k.data()), c.kv_heads * c.head_dim,
                   c.v ? reinterpret_cast<const float*>(v.data()) : nullptr, c.kv_heads * c.head_dim};
  return scores_device(m, x, c, n_kept, p, st, panel_rows);
}

}  // namespace cascade::press
