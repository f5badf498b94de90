// The study's arithmetic (SPEC section 5): set overlap, logit comparisons against exact attention,
// the FLOP model of the quality-cost curve, and the reduction of per-window results to
// mean +- standard deviation over windows. Every metric has a key, used verbatim in metrics.json,
// per_layer.csv and the report, so the three agree by construction.
#pragma once
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "arch/arch_spec.h"
#include "attention/ada_attention.h"
#include "core/tensor.h"
#include "eval/study.h"
#include "select/selection.h"

namespace cascade {

// A metric that does not apply to a configuration (written as null in metrics.json).
inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// J(S_l, S_l+1) and J vs full are set overlaps (select/selection.h).
using select::jaccard;

// logits [T, V], tokens [T]: mean of -log softmax(logits[t])[tokens[t+1]] over t = 0..T-2.
double mean_next_token_nll(const Tensor& logits, std::span<const int32_t> tokens);

// Over rows t = 0..T-2 of exact and ada logits [T, V] (row T-1 predicts past the window):
// top1 = fraction with equal argmax (ties: the smallest id), kl = mean KL(softmax exact || softmax
// ada) in nats, both softmaxes in double.
struct Agreement {
  double top1 = 0, kl = 0;
};
Agreement agreement(const Tensor& exact, const Tensor& ada);

// FLOPs of one layer's attention sub-layer on n query rows (multiply-add = 2 FLOPs), with
// d = d_model, d_q = n_heads * head_dim, d_kv = n_kv_heads * head_dim:
//   P(n) = 2 n d (d_q + 2 d_kv) + 2 n d_q d         (QKV and output projections)
//   A(n) = 2 * 2 * d_q * n (n + 1) / 2              (causal Q K^T and P V)
double projection_flops(int64_t n, const ArchSpec& a);
double attention_flops(int64_t n, const ArchSpec& a);
// The fraction of exact attention's sum_l [P(T) + A(T)] a configuration computes, from each
// layer's representatives (sorted) over a window of T tokens:
//   reps:        sum_l [P(r_l) + A(r_l)]
//   all-queries: sum_l [P(T) + 2 * 2 * d_q * sum_t keys_l(t)], keys_l(t) = #{s in S_l : s <= t}
//                + (1 if t is not in S_l: it also attends to itself).
double flops_kept(const std::vector<std::vector<int32_t>>& reps_per_layer, int64_t T, AdaQueries q,
                  const ArchSpec& a);

// Mean and sample standard deviation (n - 1; 0 when n == 1) of the finite values; NaN when none.
struct MeanStd {
  double mean = 0, std = 0;
  int64_t n = 0;
};
MeanStd mean_std(const std::vector<double>& v);

// Per-window scalar metrics of one configuration (keys, in order):
//   r_over_T            mean over layers of r_l / T
//   jaccard_consecutive mean over l < L-1 of J(S_l, S_{l+1})
//   jaccard_vs_full     mean over layers of J(S_l, full selection at l); _last: at l = L-1 (drift)
//   added, removed      mean over layers l >= 1 (layer 0 has no layer below)
//   refreshed_layers    capped: layers where the cap was passed
//   gram_needed, gram_computed          sums over layers
//   gram_needed_savings, gram_computed_savings   1 - sum / the `full` configuration's sum
//   gram_seconds        selection timer summed over layers
//   attention_error     mean over layers
//   ppl, ppl_ratio, top1, kl, flops_kept
//   time_selection, time_projections, time_attention, time_rest (total minus the three), time_total
// Continuation protocol (study.h), keys in order:
//   kept_fraction       mean over layers of the kept fraction of KV entries after the context
//   ppl, ppl_ratio      over the scored positions: exp(mean NLL), exp(mean NLL - exact's)
//   top1, kl            against exact attention over the same positions
//   time_context, time_continuation, time_total   wall seconds of the two forwards and their sum
//   time_selection      the selection / compression phase within them
const std::vector<std::string>& window_metric_keys(StudyProtocol p = StudyProtocol::prefill);
// Prefill: configs[0] must be `full` (the reference of the savings). The protocol is the window's
// (w.context > 0: continuation).
std::vector<double> window_metrics(const WindowRaw& w, size_t config);

// Per-layer metrics (keys, in order): r, r_over_T, added, removed, needed, computed, gram_seconds,
// attention_error, jaccard_vs_full, jaccard_next (NaN at the last layer), refreshed (0/1).
// Continuation protocol: kept_fraction.
const std::vector<std::string>& layer_metric_keys(StudyProtocol p = StudyProtocol::prefill);
std::vector<double> layer_metrics(const WindowRaw& w, size_t config, size_t layer);

struct ConfigSummary {
  std::string name;
  bool sweep = false, exact_trajectory = false;
  double tau = 0;
  StudyProtocol protocol = StudyProtocol::prefill;
  std::string method;  // continuation: the method item as typed
  double budget = 0;   // continuation: the KV methods' budget (NaN for the others)
  std::vector<MeanStd> overall;                 // window_metric_keys() order
  std::vector<std::vector<MeanStd>> per_layer;  // [layer][layer_metric_keys() order]
  MeanStd get(std::string_view key) const;      // cascade::Error for an unknown key
  MeanStd layer(size_t l, std::string_view key) const;
};

struct StudySummary {
  StudyProtocol protocol = StudyProtocol::prefill;
  int64_t windows = 0, layers = 0;
  MeanStd ppl_exact, time_exact_total, time_exact_attention, time_exact_projections, time_exact_rest;
  std::vector<ConfigSummary> configs;  // study_configs order
  const ConfigSummary& config(std::string_view name) const;  // cascade::Error if absent
};
StudySummary summarize(const StudyRun& run);

}  // namespace cascade
