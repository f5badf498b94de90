// The continuation protocol (SPEC 8; study.h states the scored positions): every configuration
// processes the window's context in one forward and its continuation in a second, chunked forward
// on the cache the first one left, and is compared with exact attention run the same way.
#include <chrono>
#include <limits>

#include "attention/kv_press.h"
#include "core/clock.h"
#include "core/error.h"
#include "eval/study.h"
#include "eval/study_metrics.h"

namespace cascade {

namespace {

using Clock = std::chrono::steady_clock;


struct Pass {
  Tensor logits;  // the continuation's [M, V]
  std::vector<double> kept;
  double seconds_context = 0, seconds_continuation = 0;
  int64_t cache_bytes = 0;  // after the context
  PhaseTimes times;
};

// The kept fraction of layer l's KV entries after a context of C tokens, read where the method
// keeps it: exact attention keeps all; a peer method on the CPU its KvPressTrace (mean over KV
// heads of kept / C); a selection-based method r_l / C of its trace; otherwise (a peer method on
// the GPU, whose layers are not reachable from the host) the sequence's cache size over exact
// attention's for the same context, the same for every layer.
double kept_fraction(const Sequence& s, int l, int64_t C, bool exact, double cache_ratio) {
  if (exact) return 1;
  if (const LayerAttention* cpu = s.cpu_layer(l))
    if (const KvPressTrace* t = kv_press_trace(cpu)) return t->kept_fraction();
  if (const AdaLayerTrace* t = s.trace(l)) return double(t->selection.reps.size()) / double(C);
  return cache_ratio;
}

Pass run_pass(const Model& m, std::span<const int32_t> context, std::span<const int32_t> continuation,
              const AttentionFactory* f, int64_t exact_cache_bytes) {
  Pass p;
  Sequence s = m.new_sequence(f);
  auto t0 = Clock::now();
  (void)m.forward(s, context, true);
  p.seconds_context = seconds_since(t0);
  p.cache_bytes = s.cache_bytes();
  const double ratio = exact_cache_bytes > 0 ? double(p.cache_bytes) / double(exact_cache_bytes) : 1.0;
  for (int l = 0; l < int(m.spec().n_layers); ++l)
    p.kept.push_back(kept_fraction(s, l, int64_t(context.size()), f == nullptr, ratio));
  t0 = Clock::now();
  p.logits = m.forward(s, continuation);
  p.seconds_continuation = seconds_since(t0);
  p.times = s.times();
  return p;
}

}  // namespace

WindowRaw run_continuation_window(const Model& m, std::span<const int32_t> tokens, int64_t continuation,
                                  int64_t index, int64_t begin, const std::vector<StudyConfig>& configs,
                                  const std::function<void(const std::string&)>& progress) {
  const int64_t T = int64_t(tokens.size()), C = T - continuation;
  CASCADE_CHECK(C >= 1 && continuation >= 2, "study: continuation ", continuation, " of a window of ", T);
  const auto context = tokens.first(size_t(C)), cont = tokens.subspan(size_t(C));
  WindowRaw w;
  w.index = index;
  w.begin = begin;
  w.T = T;
  w.context = C;
  const Pass exact = run_pass(m, context, cont, nullptr, 0);
  w.nll_full = mean_next_token_nll(exact.logits, cont);
  w.exact_times = exact.times;
  for (const StudyConfig& cfg : configs) {
    const Pass p = run_pass(m, context, cont, cfg.factory.get(), exact.cache_bytes);
    ConfigRaw r;
    r.name = cfg.name;
    r.nll = mean_next_token_nll(p.logits, cont);
    const Agreement a = agreement(exact.logits, p.logits);
    r.top1 = a.top1;
    r.kl = a.kl;
    r.flops_kept = std::numeric_limits<double>::quiet_NaN();
    r.times = p.times;
    r.kept = p.kept;
    r.seconds_context = p.seconds_context;
    r.seconds_continuation = p.seconds_continuation;
    w.configs.push_back(std::move(r));
    if (progress) progress(cfg.name);
  }
  return w;
}

}  // namespace cascade
