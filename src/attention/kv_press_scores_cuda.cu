// The peer methods' scores from a layer's Q and K on the GPU. The attention weights that snapkv, tova
// and h2o read (the "received" attention of kv_press_scores.h) are computed here: h2o's cost O(n^2 d)
// float64 work per layer, about a second a layer at n = 8192 on 16 host cores, and bringing Q and K to
// the host cost ~10 ms a layer for every method. Each query head's causal scores Q K^T are one float64
// GEMM per row panel (FP64 tensor cores), then one block per query row turns its row into softmax
// weights and one thread per key adds its column over the panel's rows, in increasing row order as the
// host does. Only the [heads, n] sums come back; the host finishes with scores_from_received. The
// numbers are the host's up to the order of the float64 dot products and of the softmax's denominator
// (~1e-15 relative), so the same entries are kept except at exact ties. knorm brings back K only;
// streaming and random read nothing.
#include <algorithm>
#include <cmath>
#include <vector>

#include "attention/kv_press_scores.h"
#include "attention/kv_press_scores_cuda.cuh"
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
  Context c = shape;
  const int64_t qd = shape.heads * shape.head_dim, kd = shape.kv_heads * shape.head_dim;
  std::vector<float> q, k, v;
  if (m == Method::knorm || m == Method::expected_attention) {  // knorm: K alone comes back
    k = download_rows(x.k, x.ldk, shape.n, kd, st);
    c.k = k.data();
  }
  if (m == Method::expected_attention) {
    CASCADE_CHECK(x.v, "expected-attention scores need the context's values on the device");
    q = download_rows(x.q, x.ldq, shape.n, qd, st);
    v = download_rows(x.v, x.ldv, shape.n, kd, st);
    c.q = q.data();
    c.v = v.data();
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
