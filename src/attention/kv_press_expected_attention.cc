// kvpress's ExpectedAttentionPress (expected_attention_press.py, 0.5.5; Apache-2.0, an independent
// implementation): the attention that future queries are expected to pay each entry, estimated from
// the statistics of the context's queries before rotary, rotated by the average rotation of the
// next n_future positions. The definition is in kv_press_scores.h.
#include <cblas.h>

#include <algorithm>
#include <cmath>

#include "attention/kv_press_scores.h"
#include "core/error.h"

namespace cascade::press {

// Rbar [hd, hd] row-major: the mean over positions n .. n + n_future - 1 of rotary's rotation of one
// head (identity without rotary, and on the dimensions past the rotary ones). Angles as rotary takes
// them (float(pos) * inv_freq in float32, ops/rotary.cc); a pair (a, b) of frequency i maps
// (x_a, x_b) to (x_a cos - x_b sin, x_b cos + x_a sin), so Rbar holds the mean cos and sin there.
std::vector<double> mean_rotation(const ops::Rotary* rotary, int64_t hd, int64_t n, int64_t n_future) {
  std::vector<double> r(size_t(hd * hd), 0.0);
  for (int64_t i = 0; i < hd; ++i) r[size_t(i * hd + i)] = 1;
  if (!rotary || !rotary->enabled()) return r;
  const int64_t half = rotary->dim() / 2;
  for (int64_t i = 0; i < half; ++i) {
    double cs = 0, sn = 0;
    for (int64_t t = n; t < n + n_future; ++t) {
      const float ang = float(t) * rotary->inv_freq()[size_t(i)];
      cs += std::cos(double(ang));
      sn += std::sin(double(ang));
    }
    cs /= double(n_future), sn /= double(n_future);
    const bool pairs = rotary->style() == RotaryStyle::Interleaved;
    const int64_t a = pairs ? 2 * i : i, b = pairs ? 2 * i + 1 : i + half;
    r[size_t(a * hd + a)] = cs, r[size_t(a * hd + b)] = -sn;
    r[size_t(b * hd + b)] = cs, r[size_t(b * hd + a)] = sn;
  }
  return r;
}

void rotated_statistics(const std::vector<double>& rbar, int64_t hd, const double* cov, const double* mu, double* rcov,
                        double* rmu) {
  std::vector<double> tmp(size_t(hd * hd));
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(hd), int(hd), int(hd), 1.0, rbar.data(), int(hd), cov, int(hd),
              0.0, tmp.data(), int(hd));
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(hd), int(hd), int(hd), 1.0, tmp.data(), int(hd), rbar.data(),
              int(hd), 0.0, rcov, int(hd));
  cblas_dgemv(CblasRowMajor, CblasNoTrans, int(hd), int(hd), 1.0, rbar.data(), int(hd), mu, 1, 0.0, rmu, 1);
}

std::vector<double> expected_attention(const Context& c, const Params& p) {
  if (c.n <= p.n_sink)
    fail("--attention expected-attention needs a context longer than its ", p.n_sink, " sink tokens, got ", c.n);
  if (!c.v) fail("expected-attention scores need the context's values");
  const int64_t n = c.n, hd = c.head_dim, qd = c.heads * hd, kd = c.kv_heads * hd, group = c.heads / c.kv_heads;
  const int64_t m = n - p.n_sink;  // the statistics' rows and the scored entries

  // The queries before rotary, rows n_sink..n-1, as float64 [m, qd].
  std::vector<float> q(c.q + p.n_sink * qd, c.q + n * qd);
  if (c.rotary && c.rotary->enabled()) {
    std::vector<int64_t> back(static_cast<size_t>(m));
    for (int64_t t = 0; t < m; ++t) back[size_t(t)] = -(p.n_sink + t);
    c.rotary->apply(q.data(), m, qd, c.heads, hd, back.data());
  }
  const std::vector<double> rbar = mean_rotation(c.rotary, hd, n, p.n_future);

  std::vector<double> per_head(size_t(c.heads * m));
  const size_t row = static_cast<size_t>(hd), square = row * row;
  std::vector<double> x(static_cast<size_t>(m) * row), mu(row), rmu(row), cov(square), rcov(square);
  // The scored keys of the current KV head [m, hd] in float64, and their products with Rbar S Rbar^T:
  // one GEMM a query head (a matrix-vector product a key costs a BLAS call each, ~70k a layer).
  std::vector<double> keys(static_cast<size_t>(m) * row), ck(static_cast<size_t>(m) * row);
  for (int64_t h = 0; h < c.heads; ++h) {
    if (h % group == 0)
      for (int64_t j = 0; j < m; ++j) {
        const float* k = c.k + (p.n_sink + j) * kd + (h / group) * hd;
        for (int64_t d = 0; d < hd; ++d) keys[size_t(j * hd + d)] = double(k[d]);
      }
    std::fill(mu.begin(), mu.end(), 0.0);
    for (int64_t t = 0; t < m; ++t)
      for (int64_t d = 0; d < hd; ++d) mu[size_t(d)] += double(q[size_t(t * qd + h * hd + d)]);
    for (double& v : mu) v /= double(m);
    for (int64_t t = 0; t < m; ++t)
      for (int64_t d = 0; d < hd; ++d) x[size_t(t * hd + d)] = double(q[size_t(t * qd + h * hd + d)]) - mu[size_t(d)];
    // cov = X^T X / m; then Rbar cov Rbar^T and Rbar mu.
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(hd), int(hd), int(m), 1.0 / double(m), x.data(), int(hd),
                x.data(), int(hd), 0.0, cov.data(), int(hd));
    rotated_statistics(rbar, hd, cov.data(), mu.data(), rcov.data(), rmu.data());
    // ck row j = (Rbar S Rbar^T) k_j.
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(m), int(hd), int(hd), 1.0, keys.data(), int(hd), rcov.data(),
                int(hd), 0.0, ck.data(), int(hd));

    double* s = per_head.data() + h * m;
#pragma omp parallel for schedule(static)
    for (int64_t j = 0; j < m; ++j) {
      const double* kj = &keys[size_t(j * hd)];
      const double* ckj = &ck[size_t(j * hd)];
      double lin = 0, quad = 0;
      for (int64_t d = 0; d < hd; ++d) lin += rmu[size_t(d)] * kj[d], quad += kj[d] * ckj[d];
      s[j] = lin / std::sqrt(double(hd)) + quad / double(hd) / 2;
    }
    const double mx = *std::max_element(s, s + m);
    double sum = 0;
    for (int64_t j = 0; j < m; ++j) sum += (s[j] = std::exp(s[j] - mx));
    for (int64_t j = 0; j < m; ++j) s[j] /= sum;
  }

  // Mean over the group, times the value's norm; the sinks above everything.
  std::vector<double> out(size_t(c.kv_heads * n), 0.0);
  double top = -INFINITY;
  for (int64_t g = 0; g < c.kv_heads; ++g)
    for (int64_t j = 0; j < m; ++j) {
      double e = 0;
      for (int64_t h = g * group; h < (g + 1) * group; ++h) e += per_head[size_t(h * m + j)];
      const float* v = c.v + (p.n_sink + j) * kd + g * hd;
      double vv = 0;
      for (int64_t d = 0; d < hd; ++d) vv += double(v[d]) * double(v[d]);
      top = std::max(top, out[size_t(g * n + p.n_sink + j)] = e / double(group) * std::sqrt(vv));
    }
  for (int64_t g = 0; g < c.kv_heads; ++g)
    for (int64_t j = 0; j < p.n_sink; ++j) out[size_t(g * n + j)] = top + 1;
  return out;
}

}  // namespace cascade::press
