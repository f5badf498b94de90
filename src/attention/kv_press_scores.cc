#include "attention/kv_press_scores.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "core/error.h"

namespace cascade::press {

namespace {

// Per KV head, the mean of its query heads' per-head scores [heads * len] (kvpress's
// view(bsz, num_key_value_heads, group, len).mean(2)).
std::vector<double> mean_over_group(const Context& c, const std::vector<double>& per_head, int64_t len) {
  const int64_t group = c.heads / c.kv_heads;
  std::vector<double> out(size_t(c.kv_heads * len), 0.0);
  for (int64_t h = 0; h < c.heads; ++h)
    for (int64_t j = 0; j < len; ++j) out[size_t((h / group) * len + j)] += per_head[size_t(h * len + j)] / double(group);
  return out;
}

// streaming_llm_press.py: every entry scores 1 but the n - n_kept after the n_sink sinks.
std::vector<double> streaming(const Context& c, int64_t n_kept, const Params& p) {
  if (c.n <= p.n_sink) fail("--attention streaming needs a context longer than its ", p.n_sink, " sink tokens, got ", c.n);
  std::vector<double> row(size_t(c.n), 1.0);
  std::fill(row.begin() + p.n_sink, row.begin() + std::min(c.n, p.n_sink + (c.n - n_kept)), 0.0);
  std::vector<double> out;
  for (int64_t g = 0; g < c.kv_heads; ++g) out.insert(out.end(), row.begin(), row.end());
  return out;
}

// The scored rows' causal softmax weights summed per query head and key: for query head h and row i
// (from <= i < n) the weights exp(s_ij - max) / sum over keys j <= i, s_ij = scale * <q_i, k_j> in
// float64 (kvpress's eager attention and SnapKVPress.compute_window_attention: the softmax runs over
// every visible key). The inner products of a block of rows are one float64 GEMM against the keys
// before the block's end; each key's sum adds the rows in increasing order, whatever the threads.
std::vector<double> received_on_host(const Context& c, int64_t from) {
  constexpr int64_t kRows = 256;
  const int64_t n = c.n, hd = c.head_dim, group = c.heads / c.kv_heads;
  std::vector<double> received(size_t(c.heads * n), 0.0);
  std::vector<double> kd(size_t(n * hd)), qd(size_t(std::min(kRows, n) * hd)), s(size_t(std::min(kRows, n) * n));
  for (int64_t h = 0; h < c.heads; ++h) {
    if (h % group == 0)
      for (int64_t j = 0; j < n; ++j)
        for (int64_t d = 0; d < hd; ++d) kd[size_t(j * hd + d)] = double(c.k[j * c.kv_heads * hd + (h / group) * hd + d]);
    double* acc = received.data() + h * n;
    for (int64_t a = from; a < n; a += kRows) {
      const int64_t rows = std::min(kRows, n - a), cols = a + rows;  // row a + r sees keys 0 .. a + r
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t d = 0; d < hd; ++d) qd[size_t(r * hd + d)] = double(c.q[(a + r) * c.heads * hd + h * hd + d]);
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(cols), int(hd), 1.0, qd.data(), int(hd),
                  kd.data(), int(hd), 0.0, s.data(), int(cols));
#pragma omp parallel for schedule(static)
      for (int64_t r = 0; r < rows; ++r) {
        double* w = s.data() + r * cols;
        const int64_t len = a + r + 1;
        double mx = -INFINITY;
        for (int64_t j = 0; j < len; ++j) mx = std::max(mx, w[j] *= c.scale);
        double sum = 0;
        for (int64_t j = 0; j < len; ++j) sum += (w[j] = std::exp(w[j] - mx));
        for (int64_t j = 0; j < len; ++j) w[j] /= sum;
      }
#pragma omp parallel for schedule(static)
      for (int64_t j = 0; j < cols; ++j)
        for (int64_t r = std::max<int64_t>(0, j - a); r < rows; ++r) acc[j] += s[size_t(r * cols + j)];
    }
  }
  return received;
}

// snapkv_press.py: the attention that the last `window` queries pay to the entries before the
// window, averaged over those queries, average-pooled (zero padding counted, as avg_pool1d's
// count_include_pad), averaged over the group; the window's own entries score above every other.
std::vector<double> snapkv(const Context& c, const std::vector<double>& received, const Params& p) {
  const int64_t len = c.n - p.window, half = p.kernel / 2;
  std::vector<double> pooled(size_t(c.heads * len), 0.0);
  for (int64_t h = 0; h < c.heads; ++h)
    for (int64_t j = 0; j < len; ++j)
      for (int64_t t = std::max<int64_t>(0, j - half); t <= std::min(len - 1, j + half); ++t)
        pooled[size_t(h * len + j)] += received[size_t(h * c.n + t)] / double(p.window) / double(p.kernel);
  const std::vector<double> kv = mean_over_group(c, pooled, len);
  const double top = *std::max_element(kv.begin(), kv.end()) + 1;
  std::vector<double> out(size_t(c.kv_heads * c.n), top);
  for (int64_t g = 0; g < c.kv_heads; ++g) std::copy_n(kv.begin() + g * len, len, out.begin() + g * c.n);
  return out;
}

// tova_press.py: the last query's attention to every earlier entry, averaged over all query heads
// (one score for every KV head); the last entry scores above every other.
std::vector<double> tova(const Context& c, const std::vector<double>& received) {
  const int64_t len = c.n - 1;
  std::vector<double> mean(size_t(len), 0.0);
  for (int64_t h = 0; h < c.heads; ++h)
    for (int64_t j = 0; j < len; ++j) mean[size_t(j)] += received[size_t(h * c.n + j)] / double(c.heads);
  const double top = len ? *std::max_element(mean.begin(), mean.end()) + 1 : 1;
  mean.push_back(top);
  std::vector<double> out;
  for (int64_t g = 0; g < c.kv_heads; ++g) out.insert(out.end(), mean.begin(), mean.end());
  return out;
}

// observed_attention_press.py: the attention an entry receives, summed over every context query
// (causal) and divided by how many see it (n - j), averaged over the group.
std::vector<double> h2o(const Context& c, std::vector<double> received) {
  for (int64_t h = 0; h < c.heads; ++h)
    for (int64_t j = 0; j < c.n; ++j) received[size_t(h * c.n + j)] /= double(c.n - j);
  return mean_over_group(c, received, c.n);
}

// knorm_press.py: minus the key's L2 norm, so that the smallest norms are kept.
std::vector<double> knorm(const Context& c) {
  std::vector<double> out(size_t(c.kv_heads * c.n));
  for (int64_t g = 0; g < c.kv_heads; ++g)
    for (int64_t j = 0; j < c.n; ++j) {
      const float* k = c.k + j * c.kv_heads * c.head_dim + g * c.head_dim;
      double ss = 0;
      for (int64_t d = 0; d < c.head_dim; ++d) ss += double(k[d]) * double(k[d]);
      out[size_t(g * c.n + j)] = -std::sqrt(ss);
    }
  return out;
}

// random_press.py draws torch.rand(kv_heads, n) from a generator seeded afresh at every layer, so
// every layer scores alike; here the draws are those of std::mt19937_64(seed) in KV-head-major
// order, each (x >> 11) * 2^-53, uniform in [0, 1).
std::vector<double> uniform_draws(const Context& c, const Params& p) {
  std::mt19937_64 rng(p.seed);
  std::vector<double> out(size_t(c.kv_heads * c.n));
  for (double& x : out) x = double(rng() >> 11) * 0x1.0p-53;
  return out;
}

}  // namespace

const std::vector<std::string>& method_names() {
  static const std::vector<std::string> names = {"streaming", "snapkv", "tova", "h2o", "knorm", "random",
                                                 "expected-attention"};
  return names;
}

bool parse_method(const std::string& name, Method* m) {
  const auto& names = method_names();
  const auto it = std::find(names.begin(), names.end(), name);
  if (it == names.end()) return false;
  *m = Method(it - names.begin());
  return true;
}

const std::string& method_name(Method m) { return method_names()[size_t(m)]; }

int64_t kept_count(double budget, int64_t n) { return std::min(n, int64_t(std::floor(budget * double(n) + 0.5))); }

int64_t received_from(Method m, const Context& c, const Params& p) {
  switch (m) {
    case Method::h2o: return 0;
    case Method::snapkv:
      if (c.n <= p.window)
        fail("--attention snapkv needs a context longer than its observation window of ", p.window, " tokens, got ", c.n);
      return c.n - p.window;
    case Method::tova: return c.n - 1;
    default: return -1;
  }
}

std::vector<double> scores_from_received(Method m, const Context& c, std::vector<double> received, const Params& p) {
  switch (m) {
    case Method::h2o: return h2o(c, std::move(received));
    case Method::snapkv: return snapkv(c, received, p);
    case Method::tova: return tova(c, received);
    default: fail("--attention ", method_name(m), " is not scored from attention weights");
  }
}

std::vector<double> scores(Method m, const Context& c, int64_t n_kept, const Params& p) {
  const int64_t from = received_from(m, c, p);
  if (from >= 0) return scores_from_received(m, c, received_on_host(c, from), p);
  switch (m) {
    case Method::streaming: return streaming(c, n_kept, p);
    case Method::knorm: return knorm(c);
    case Method::random: return uniform_draws(c, p);
    case Method::expected_attention: return expected_attention(c, p);
    default: fail("unknown KV compression method");
  }
}

std::vector<std::vector<int64_t>> top_positions(const std::vector<double>& scores, int64_t kv_heads, int64_t n,
                                                int64_t n_kept) {
  std::vector<std::vector<int64_t>> kept(static_cast<size_t>(kv_heads));
  for (int64_t g = 0; g < kv_heads; ++g) {
    const double* s = scores.data() + g * n;
    std::vector<int64_t> order(static_cast<size_t>(n));
    std::iota(order.begin(), order.end(), 0);
    // Decreasing score, the earlier position first among equal ones: a strict order whose first
    // n_kept are those of a stable sort by decreasing score, found in O(n) (a sort of every entry
    // was most of a GPU study's compression time for random and knorm).
    const auto before = [s](int64_t a, int64_t b) { return s[a] > s[b] || (s[a] == s[b] && a < b); };
    if (n_kept < n) std::nth_element(order.begin(), order.begin() + n_kept, order.end(), before);
    order.resize(size_t(n_kept));
    std::sort(order.begin(), order.end());
    kept[size_t(g)] = std::move(order);
  }
  return kept;
}

}  // namespace cascade::press
