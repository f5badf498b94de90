// The study's driver: configurations, the window plan, one window through every configuration, and
// the resumable loop over windows (state in study_store.h, arithmetic in study_metrics.h).
#include "eval/study.h"

#include <optional>

#include <algorithm>
#include <cstdio>
#include <limits>
#include <random>

#include "core/error.h"
#include "core/progress.h"
#include "eval/study_metrics.h"
#include "eval/study_report.h"
#include "eval/study_observer.h"
#include "eval/study_store.h"

namespace cascade {

namespace {

StudyConfig config(std::string name, const StudyParams& p, select::Mode mode, double tau) {
  StudyConfig c;
  c.name = std::move(name);
  c.ada.select.tau = tau;
  c.ada.select.similarity = p.similarity;
  c.ada.select.rule = select::Rule::greedy;
  c.ada.mode.mode = mode;
  (void)c.ada.select.theta();  // validates tau before any work
  return c;
}

void set_jaccard_next(ConfigRaw& r, const std::vector<std::vector<int32_t>>& reps) {
  for (size_t l = 0; l + 1 < reps.size(); ++l) r.layers[l].jaccard_next = jaccard(reps[l], reps[l + 1]);
}

// The timed runs compute the last position's logits only, as a prefill does: every position's logits
// (T x vocabulary, brought to the host from a GPU) would cost more than the layers at long T.
constexpr bool kTimedLastOnly = true;

// One ADA configuration: a measured run for the traces and logits, a plain run for the times.
ConfigRaw run_ada(const Model& m, std::span<const int32_t> tokens, const Tensor& exact, const StudyConfig& cfg) {
  const int L = int(m.spec().n_layers);
  AdaOptions measured = cfg.ada;
  measured.measure_error = measured.compare_full = true;
  const AdaAttentionFactory mf(measured);
  Sequence s = m.new_sequence(&mf);
  const Tensor logits = m.forward(s, tokens);
  ConfigRaw r;
  r.name = cfg.name;
  std::vector<std::vector<int32_t>> reps;
  for (int l = 0; l < L; ++l) {
    const AdaLayerTrace& t = *s.trace(l);
    const select::Selection& sel = t.selection;
    r.layers.push_back({int64_t(sel.reps.size()), int64_t(sel.added.size()), int64_t(sel.removed.size()),
                        sel.cost.needed, sel.cost.computed, 0.0, t.attention_error, t.jaccard_vs_full, -1.0,
                        sel.refreshed});
    reps.push_back(sel.reps);
  }
  set_jaccard_next(r, reps);
  r.nll = mean_next_token_nll(logits, tokens);
  const Agreement a = agreement(exact, logits);
  r.top1 = a.top1;
  r.kl = a.kl;
  r.flops_kept = flops_kept(reps, int64_t(tokens.size()), cfg.ada.queries, m.spec());
  // The plain run: same selections, but its times hold no measurement work; the Gram timer is taken
  // from it too, so that it is a share of the same run's selection phase.
  const AdaAttentionFactory pf(cfg.ada);
  Sequence plain = m.new_sequence(&pf);
  (void)m.forward(plain, tokens, kTimedLastOnly);
  r.times = plain.times();
  for (int l = 0; l < L; ++l) r.layers[size_t(l)].gram_seconds = plain.trace(l)->selection.cost.seconds;
  return r;
}

// exact-trajectory: exact attention, the cascade (and full) selection on its features.
ConfigRaw run_observed(const Model& m, std::span<const int32_t> tokens, const StudyConfig& cfg) {
  const ObservingFactory f(cfg.ada.select);
  Sequence s = m.new_sequence(&f);
  (void)m.forward(s, tokens);
  ConfigRaw r;
  r.name = cfg.name;
  r.nll = r.top1 = r.kl = r.flops_kept = kNaN;
  r.times = {kNaN, kNaN, kNaN, kNaN};
  std::vector<std::vector<int32_t>> reps;
  for (int l = 0; l < int(m.spec().n_layers); ++l) {
    const ObservedSelections& o = *observed_selections(*s.cpu_layer(l));
    const select::Selection& c = o.cascade;
    r.layers.push_back({int64_t(c.reps.size()), int64_t(c.added.size()), int64_t(c.removed.size()), c.cost.needed,
                        c.cost.computed, c.cost.seconds, kNaN, jaccard(c.reps, o.full.reps), -1.0, false});
    reps.push_back(c.reps);
  }
  set_jaccard_next(r, reps);
  return r;
}

}  // namespace

StudyProtocol parse_study_protocol(const std::string& name) {
  if (name == "prefill") return StudyProtocol::prefill;
  if (name == "continuation") return StudyProtocol::continuation;
  fail("--protocol: ", name, " not in {prefill,continuation}");
}

const char* to_string(StudyProtocol p) { return p == StudyProtocol::prefill ? "prefill" : "continuation"; }

std::vector<StudyConfig> study_configs(const StudyParams& p) {
  using select::Mode;
  if (p.capped_k < 0) fail("--capped-k must be >= 0, got ", p.capped_k);
  std::vector<StudyConfig> c;
  c.push_back(config("full", p, Mode::full, p.tau));
  c.push_back(config("cascade", p, Mode::cascade, p.tau));
  c.push_back(config("inherit", p, Mode::inherit, p.tau));
  c.push_back(config("capped:" + std::to_string(p.capped_k), p, Mode::capped, p.tau));
  c.back().ada.mode.cap = p.capped_k;
  c.push_back(config("random:" + std::to_string(p.seed), p, Mode::random, p.tau));
  c.back().ada.mode.seed = p.seed;
  c.push_back(config("cascade+all-queries", p, Mode::cascade, p.tau));
  c.back().ada.queries = AdaQueries::all;
  c.push_back(config("cascade+proportional", p, Mode::cascade, p.tau));
  c.back().ada.proportional = true;
  c.push_back(config("exact-trajectory", p, Mode::cascade, p.tau));
  c.back().exact_trajectory = true;
  for (double tau : p.tau_sweep) {
    if (std::count(p.tau_sweep.begin(), p.tau_sweep.end(), tau) > 1) fail("--tau-sweep names tau = ", tau, " twice");
    c.push_back(config("cascade@tau=" + tau_text(tau), p, Mode::cascade, tau));
    c.back().sweep = true;
  }
  return c;
}

std::vector<int64_t> study_windows(const StudyParams& p, int64_t max_positions) {
  if (p.ctx < 2) fail("--ctx must be at least 2, got ", p.ctx);
  if (p.ctx > max_positions)
    fail("--ctx ", p.ctx, " is longer than the model's context of ", max_positions, " tokens");
  if (p.protocol == StudyProtocol::continuation && !(p.continuation >= 2 && p.continuation < p.ctx))
    fail("--continuation must be at least 2 and less than --ctx ", p.ctx, " (the context needs a token), got ",
         p.continuation);
  const int64_t K = p.n_tokens / p.ctx;
  if (K == 0) fail("the text has ", p.n_tokens, " tokens, fewer than one window of --ctx ", p.ctx);
  if (p.windows < 0 || p.windows > K)
    fail("--windows ", p.windows, " is not in [0, ", K, "]: the text has ", K, " windows of ", p.ctx, " tokens");
  std::vector<int64_t> all(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k) all[size_t(k)] = k;
  if (p.windows == 0) return all;
  // A partial Fisher-Yates shuffle with our own index arithmetic (std::uniform_int_distribution
  // differs between standard libraries; the pick must not).
  std::mt19937_64 rng(p.seed);
  for (int64_t i = 0; i < p.windows; ++i) std::swap(all[size_t(i)], all[size_t(i + int64_t(rng() % uint64_t(K - i)))]);
  all.resize(size_t(p.windows));
  std::sort(all.begin(), all.end());
  return all;
}

WindowRaw run_window(const Model& m, std::span<const int32_t> tokens, int64_t index, int64_t begin,
                     const std::vector<StudyConfig>& configs, const std::function<void()>& tick) {
  WindowRaw w;
  w.index = index;
  w.begin = begin;
  w.T = int64_t(tokens.size());
  Sequence ex = m.new_sequence();
  const Tensor exact = m.forward(ex, tokens);
  w.nll_full = mean_next_token_nll(exact, tokens);
  Sequence timed = m.new_sequence();
  (void)m.forward(timed, tokens, kTimedLastOnly);
  w.exact_times = timed.times();
  for (const StudyConfig& cfg : configs) {
    w.configs.push_back(cfg.exact_trajectory ? run_observed(m, tokens, cfg) : run_ada(m, tokens, exact, cfg));
    if (tick) tick();
  }
  return w;
}

StudyRun run_study(const Model& m, std::span<const int32_t> ids, const StudyParams& p,
                   std::vector<StudyConfig> configs, const std::filesystem::path& out_dir, bool overwrite,
                   bool quiet, const std::function<void()>& tick) {
  CASCADE_CHECK(int64_t(ids.size()) == p.n_tokens, "study: ", ids.size(), " token ids for n_tokens = ", p.n_tokens);
  CASCADE_CHECK(!configs.empty(), "study: no configurations");
  StudyRun run{p, {}, std::move(configs), {}, 0};
  const std::vector<int64_t> planned = study_windows(p, m.spec().max_positions);
  std::optional<StudyStore> store;
  if (!out_dir.empty()) {
    std::vector<std::string> names;
    for (const auto& c : run.configs) names.push_back(c.name);
    store.emplace(out_dir, p, planned, names, overwrite);
    run.windows = store->done();
    run.resumed = int64_t(run.windows.size());
  }
  std::vector<int64_t> todo;
  for (int64_t k : planned)
    if (std::none_of(run.windows.begin(), run.windows.end(), [&](const WindowRaw& w) { return w.index == k; }))
      todo.push_back(k);
  if (p.protocol == StudyProtocol::continuation && !todo.empty()) {
    // One untimed exact forward first, so that one-time work (the CPU's weight widening, the GPU's
    // library handles) does not land in the first window's times.
    Sequence warm = m.new_sequence();
    (void)m.forward(warm, ids.subspan(size_t(todo[0] * p.ctx), size_t(p.ctx - p.continuation)), true);
  }
  Progress bar("study", int64_t(todo.size() * run.configs.size()), !quiet);
  int64_t ticks = 0;
  for (int64_t k : todo) {
    const int64_t begin = k * p.ctx;
    const auto tokens = ids.subspan(size_t(begin), size_t(p.ctx));
    // The bar's note names the window and the configuration just finished.
    const auto done = [&](const std::string& name) {
      bar.update(++ticks, "window " + std::to_string(k) + ", " + name);
      if (tick) tick();
    };
    WindowRaw w = p.protocol == StudyProtocol::continuation
                      ? run_continuation_window(m, tokens, p.continuation, k, begin, run.configs, done)
                      : run_window(m, tokens, k, begin, run.configs, [&, c = size_t(0)]() mutable {
                          done(run.configs[c++].name);
                        });
    if (store) store->append(w);
    run.windows.push_back(std::move(w));
  }
  bar.finish(run.resumed ? std::to_string(run.resumed) + " windows resumed" : std::string());
  std::sort(run.windows.begin(), run.windows.end(), [](const WindowRaw& a, const WindowRaw& b) { return a.index < b.index; });
  return run;
}

}  // namespace cascade
