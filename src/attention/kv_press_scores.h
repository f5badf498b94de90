// The peer KV-cache compression methods' choice of kept entries (SPEC section 7), as NVIDIA kvpress
// 0.5.x defines them in kvpress/presses/<name>_press.py (Apache-2.0; this is an independent
// implementation): every method scores each context entry per KV head, and a KV head keeps its
// n_kept entries of highest score (kvpress ScorerPress.compress). Scores that need the context's
// attention weights compute them here in float64 from the layer's Q and K after rotary.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "ops/rotary.h"

namespace cascade::press {

enum class Method { streaming, snapkv, tova, h2o, knorm, random, expected_attention };

// The methods' names as --attention spells them, in Method's order.
const std::vector<std::string>& method_names();
// False when `name` is none of method_names().
bool parse_method(const std::string& name, Method* m);
const std::string& method_name(Method m);

// kvpress's fixed hyper-parameters, and the seed of `random`.
struct Params {
  int64_t n_sink = 4;    // streaming, expected-attention: the first n_sink entries are kept first
  int64_t window = 64;   // snapkv: the last `window` context queries observe, their own entries are kept
  int64_t kernel = 5;    // snapkv: width of the average pooling of the observed attention
  uint64_t seed = 0;     // random
  int64_t n_future = 512;  // expected-attention: the future positions whose rotation it averages
};

// One layer's context after its exact prefill.
struct Context {
  int64_t n = 0, heads = 0, kv_heads = 0, head_dim = 0;
  const float* q = nullptr;  // [n, heads * head_dim] after rotary
  const float* k = nullptr;  // [n, kv_heads * head_dim] after rotary
  double scale = 1;          // the layer's softmax scale
  // expected-attention only: the values [n, kv_heads * head_dim], and the layer's rotary (null or
  // disabled: none), with which it undoes Q's rotation and rotates the query statistics.
  const float* v = nullptr;
  const ops::Rotary* rotary = nullptr;
};

// How many of n context entries a budget keeps: round(budget * n), halves rounded up, as the SPEC
// says. kvpress (scorer_press.py, compress) keeps int(n * (1 - compression_ratio)) with
// compression_ratio = 1 - budget: a truncation, so it keeps one fewer wherever budget * n has a
// fractional part of .5 or more, and also where the product of an integer lands just below it
// (budget 0.08 of 25 entries: 1.9999999999999991, so 1 kept, not 2).
int64_t kept_count(double budget, int64_t n);

// Scores [kv_heads * n] (KV head major) of the context's entries: an entry of higher score is kept
// first. cascade::Error where kvpress asserts: streaming with n <= n_sink, snapkv with n <= window.
std::vector<double> scores(Method m, const Context& c, int64_t n_kept, const Params& p);

// snapkv, tova and h2o score from the attention that the context's query rows [from, n) pay to each
// entry: per query head, the causal softmax weights summed over those rows in increasing row order
// ([heads * n], "received"). h2o's rows are every query, snapkv's the last `window`, tova's the last;
// the other methods read no attention (-1). cascade::Error for snapkv with n <= window.
int64_t received_from(Method m, const Context& c, const Params& p);
// A method's scores from its rows' received attention (computed on the host by scores(), on the GPU
// by scores_on_gpu), so that both devices share every step after the attention weights.
std::vector<double> scores_from_received(Method m, const Context& c, std::vector<double> received, const Params& p);
// scores(m, c, ...) with the attention weights computed on the GPU (kv_press_scores_cuda.cu) from c's
// host Q and K: the same numbers up to the order of float64 sums. panel_rows > 0 bounds the query
// rows per GEMM (tests cross panels with it). cascade::Error without a GPU or in a CPU-only build.
std::vector<double> scores_on_gpu(Method m, const Context& c, int64_t n_kept, const Params& p, int64_t panel_rows = 0);

// expected_attention_press.py (use_covariance and use_vnorm on, epsilon 0): from the queries before
// rotary at positions n_sink..n-1, their mean mu and covariance S per query head (float64, divided by
// their count); Rbar the mean over positions n .. n + n_future - 1 of the rotation matrix that rotary
// applies there; entry j >= n_sink (its key k after rotary) scores, per query head,
//   softmax_j( (Rbar mu) . k / sqrt(head_dim) + k^T (Rbar S Rbar^T) k / (2 head_dim) ),
// averaged over the group and times ||v_j||; the n_sink first entries score above every other.
// kvpress takes the queries before rotary from q_proj; here Q's rotation is undone (rotary at the
// negated positions), which returns them up to float32 rounding. cascade::Error for n <= n_sink or
// without c.v.
std::vector<double> expected_attention(const Context& c, const Params& p);
// Its steps that both devices share (the GPU's twin runs the rest in kv_press_scores_cuda.cu): Rbar
// [hd, hd] row-major, and one query head's rotated statistics rcov = Rbar S Rbar^T [hd, hd] and
// rmu = Rbar mu [hd] from its covariance S and mean mu.
std::vector<double> mean_rotation(const ops::Rotary* rotary, int64_t hd, int64_t n, int64_t n_future);
void rotated_statistics(const std::vector<double>& rbar, int64_t hd, const double* cov, const double* mu, double* rcov,
                        double* rmu);

// Per KV head, the n_kept positions of highest score in increasing order. Ties (streaming's and
// snapkv's equal scores when n_kept is below their sink or window count) go to the earlier
// position: the first n_kept of a stable sort by decreasing score.
std::vector<std::vector<int64_t>> top_positions(const std::vector<double>& scores, int64_t kv_heads, int64_t n,
                                                int64_t n_kept);

}  // namespace cascade::press
