// report.md: what a reader needs to judge the run, every number as "mean ± std" over windows, the
// paper's ranges next to ours stated plainly (inside or outside), and the definitions used.
#include "eval/study_report.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace cascade {

namespace {

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// "0.9123 ± 0.012"; scale multiplies both (1e3: seconds to ms); "n/a" when nothing was measured.
std::string ms(const MeanStd& m, double scale = 1) {
  if (m.n == 0) return "n/a";
  return fmt("%.4g", m.mean * scale) + " ± " + fmt("%.2g", m.std * scale);
}

std::string pct(const MeanStd& m) {
  if (m.n == 0) return "n/a";
  return fmt("%.1f%%", 100 * m.mean) + " ± " + fmt("%.1f%%", 100 * m.std);
}

std::string row(const std::vector<std::string>& cells) {
  std::string r = "|";
  for (const auto& c : cells) r += " " + c + " |";
  return r + "\n";
}

// A table header: the first text_cols columns (names, descriptions) left-aligned, numbers right-aligned.
std::string header(const std::vector<std::string>& cells, size_t text_cols = 1) {
  std::string sep = "|";
  for (size_t i = 0; i < cells.size(); ++i) sep += i < text_cols ? "---|" : "---:|";
  return row(cells) + sep + "\n";
}

const char* describe(const std::string& name) {
  if (name == "full") return "full selection at every layer (SPEC 1), r x r attention";
  if (name == "cascade") return "exact cascade from the layer below (SPEC 2): same sets as full";
  if (name == "inherit") return "S_l+1 = S_l, no validation (parents re-chosen)";
  if (name.rfind("capped:", 0) == 0) return "cascade with at most K additions, else a full re-selection";
  if (name.rfind("random:", 0) == 0) return "control: random set of the same size r_l holding token 0";
  if (name == "cascade+all-queries")
    return "cascade selection; every token's query attends to the representatives before it and to itself";
  if (name == "cascade+proportional") return "cascade selection; + log n_s(t) on representative s's logit";
  if (name == "exact-trajectory")
    return "exact attention; the full and cascade selections run on its own layer features and are not used "
           "(the sets of the model's activations, not of ADA's)";
  return "";
}

void write_file(const std::filesystem::path& file, const std::string& text) {
  std::ofstream f(file, std::ios::binary);
  if (!f) fail(file.string(), ": cannot open for writing");
  f << text;
  if (!f) fail(file.string(), ": write failed");
}

// The run's model, tokenizer, text and windows (both protocols).
void run_lines(std::ostringstream& o, const StudyRun& run, const StudySummary& s, const ArchSpec& a) {
  const StudyParams& p = run.params;
  const int64_t K = p.n_tokens / p.ctx;
  o << "- Model: `" << p.model << "`\n";
  o << "- Architecture: " << a.model_type << ", " << a.n_layers << " layers, d_model " << a.d_model << ", "
    << a.n_heads << " query heads (" << a.n_kv_heads << " key/value) of width " << a.head_dim << ", d_ff " << a.d_ff
    << ", vocabulary " << a.vocab_size << ", context " << a.max_positions << "\n";
  // No --tokenizer: a GGUF file carries its own (model_tokenizer prefers it), anything else has one beside it.
  const bool gguf = std::filesystem::path(p.model).extension() == ".gguf";
  o << "- Tokenizer: "
    << (!p.tokenizer.empty() ? "`" + p.tokenizer + "`" : gguf ? "embedded in the GGUF file" : "found beside the model") << "\n";
  o << "- Text: `" << p.text << "`, " << p.n_tokens << " tokens (tokenizer prefix included)\n";
  o << "- Windows: " << s.windows << " of the " << K << " non-overlapping windows of T = " << p.ctx << " tokens ("
    << (p.windows == 0 ? std::string("all") : "drawn at random with seed " + std::to_string(p.seed)) << ")"
    << (run.resumed ? ", " + std::to_string(run.resumed) + " of them resumed from an earlier run" : "") << "\n";
}

// Device lines, written only off the CPU default (so that a CPU study's report is unchanged), and
// the run's notes.
void placement_lines(std::ostringstream& o, const StudyRun& run) {
  const StudyParams& p = run.params;
  if (p.device != "cpu" || !p.dtype.empty())
    o << "- Device: " << p.device << ", dtype " << (p.dtype.empty() ? "the device's default" : p.dtype) << "\n";
  for (const std::string& n : run.notes) o << "- Note: " << n << "\n";
}

}  // namespace

std::string tau_text(double tau) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", tau);
  return b;
}

std::vector<PaperComparison> paper_vs_ours(const StudySummary& s) {
  std::vector<PaperComparison> rows;
  for (const char* config : {"cascade", "exact-trajectory"}) {
    // exact-trajectory is absent where it cannot run (on the GPU: study_driver.h).
    if (std::none_of(s.configs.begin(), s.configs.end(), [&](const ConfigSummary& c) { return c.name == config; }))
      continue;
    const ConfigSummary& c = s.config(config);
    rows.push_back({"Gram savings, needed inner products (cascade vs full)", config, "gram_needed_savings",
                    kPaperSavingsLo, kPaperSavingsHi, c.get("gram_needed_savings")});
    rows.push_back({"Gram savings, computed inner products (cascade vs full)", config, "gram_computed_savings",
                    kPaperSavingsLo, kPaperSavingsHi, c.get("gram_computed_savings")});
    rows.push_back({"Consecutive-layer Jaccard J(S_l, S_l+1), mean over l", config, "jaccard_consecutive",
                    kPaperJaccardLo, kPaperJaccardHi, c.get("jaccard_consecutive")});
  }
  return rows;
}

void write_report_md(const StudyRun& run, const StudySummary& s, const ArchSpec& a, const StudyInfo& info,
                     const std::filesystem::path& file) {
  const StudyParams& p = run.params;
  const std::string N = std::to_string(s.windows);
  std::ostringstream o;
  o << "# ADA study: " << std::filesystem::path(p.model).filename().string() << " on "
    << std::filesystem::path(p.text).filename().string() << ", T = " << p.ctx << "\n\n";
  o << "Every figure is mean ± sample standard deviation over " << N
    << " windows (each window's value first, then the statistics over windows).\n\n";
  o << "## Run\n\n";
  run_lines(o, run, s, a);
  o << "- Selection: tau = " << fmt("%g", p.tau) << " (theta = 1 - tau^2 = " << fmt("%g", 1 - p.tau * p.tau)
    << "), similarity " << select::to_string(p.similarity) << ", greedy rule; capped K = " << p.capped_k
    << "; random seed " << p.seed << "\n";
  o << "- Date: " << info.date << "\n";
  if (!info.commit.empty()) o << "- Engine commit: " << info.commit << "\n";
  o << "- CPU threads: " << info.threads << "\n";
  placement_lines(o, run);
  o << "- Exact attention: perplexity per window " << ms(s.ppl_exact) << ", forward time " << ms(s.time_exact_total, 1e3)
    << " ms per window\n\n";

  o << "## Configurations\n\n" << header({"name", "what it is"}, 2);
  for (const auto& c : s.configs)
    if (!c.sweep) o << row({"`" + c.name + "`", describe(c.name)});
  o << "\nTau sweep: `cascade@tau=X` is `cascade` at tau = X.\n\n";

  o << "## Paper vs ours\n\n"
    << "The paper reports Gram savings of 22% to 63% and consecutive-layer Jaccard 0.83 to 0.94 on GPT-2 124M, "
       "GPT-J 6B and OPT 6.7B. Ours: "
    << a.model_type << " (" << std::filesystem::path(p.model).filename().string() << "), T = " << p.ctx << ", tau = "
    << fmt("%g", p.tau) << ", mean ± std over " << N
    << " windows, for `cascade` (selections on the layer features ADA itself produces: a non-representative "
       "copies its parent's attention output into the next layer) and for `exact-trajectory` (the same rule on the "
       "features of exact attention).\n\n"
    << header({"quantity", "configuration", "paper", "ours", "relative to the paper's range"}, 3);
  for (const PaperComparison& c : paper_vs_ours(s)) {
    const bool savings = c.key != "jaccard_consecutive";
    o << row({c.quantity, "`" + c.config + "`",
              savings ? fmt("%.0f%%", 100 * c.lo) + " to " + fmt("%.0f%%", 100 * c.hi) : fmt("%.2f", c.lo) + " to " + fmt("%.2f", c.hi),
              savings ? pct(c.ours) : ms(c.ours), c.inside() ? "inside" : "outside"});
  }
  o << "\nMeasured selection time per window (selection phase, ms): `cascade` "
    << ms(s.config("cascade").get("time_selection"), 1e3) << ", `full` " << ms(s.config("full").get("time_selection"), 1e3)
    << ".\n\n";

  o << "## Selection, per configuration\n\n"
    << header({"configuration", "r/T", "J(S_l, S_l+1)", "J vs full (mean over layers)", "J vs full, last layer",
               "added / layer", "removed / layer", "Gram savings, needed", "Gram savings, computed", "refreshed layers"});
  for (const auto& c : s.configs)
    if (!c.sweep)
      o << row({"`" + c.name + "`", ms(c.get("r_over_T")), ms(c.get("jaccard_consecutive")), ms(c.get("jaccard_vs_full")),
                ms(c.get("jaccard_vs_full_last")), ms(c.get("added")), ms(c.get("removed")),
                pct(c.get("gram_needed_savings")), pct(c.get("gram_computed_savings")), ms(c.get("refreshed_layers"))});
  o << "\n## Quality against exact attention, per configuration\n\n"
    << header({"configuration", "attention error (mean over layers)", "ppl_ada / ppl_full", "top-1 agreement",
               "KL(full ‖ ada), nats", "FLOPs kept"});
  for (const auto& c : s.configs)
    if (!c.sweep && !c.exact_trajectory)
      o << row({"`" + c.name + "`", ms(c.get("attention_error")), ms(c.get("ppl_ratio")), ms(c.get("top1")),
                ms(c.get("kl")), ms(c.get("flops_kept"))});
  o << "\n## Phase times, ms per window\n\n"
    << "Times of a separate run without the study's measurements that computes the last position's logits only (as a "
       "prefill does); rest = total - selection - projections - attention (norms, MLPs, head, copying). The Gram timer "
       "is the selection kernels' own share of the selection phase.\n\n"
    << header({"configuration", "selection", "projections", "attention", "rest", "total", "Gram timer"});
  o << row({"exact attention", "0", ms(s.time_exact_projections, 1e3), ms(s.time_exact_attention, 1e3),
            ms(s.time_exact_rest, 1e3), ms(s.time_exact_total, 1e3), ""});
  for (const auto& c : s.configs)
    if (!c.sweep && !c.exact_trajectory)
      o << row({"`" + c.name + "`", ms(c.get("time_selection"), 1e3), ms(c.get("time_projections"), 1e3),
                ms(c.get("time_attention"), 1e3), ms(c.get("time_rest"), 1e3), ms(c.get("time_total"), 1e3),
                ms(c.get("gram_seconds"), 1e3)});

  const ConfigSummary& cas = s.config("cascade");
  const ConfigSummary& full = s.config("full");
  o << "\n## Per layer: `cascade`\n\n"
    << header({"layer", "r", "r/T", "added", "removed", "J(S_l, S_l+1)", "J vs full", "Gram needed", "Gram computed",
               "`full` Gram needed", "`full` Gram computed", "attention error"});
  for (size_t l = 0; l < cas.per_layer.size(); ++l)
    o << row({std::to_string(l), ms(cas.layer(l, "r")), ms(cas.layer(l, "r_over_T")), ms(cas.layer(l, "added")),
              ms(cas.layer(l, "removed")), ms(cas.layer(l, "jaccard_next")), ms(cas.layer(l, "jaccard_vs_full")),
              ms(cas.layer(l, "needed")), ms(cas.layer(l, "computed")), ms(full.layer(l, "needed")),
              ms(full.layer(l, "computed")), ms(cas.layer(l, "attention_error"))});

  o << "\n## Tau sweep (`cascade` at each tau)\n\n";
  if (p.tau_sweep.empty()) o << "No --tau-sweep was given.\n";
  else {
    o << header({"tau", "r/T", "FLOPs kept", "Gram savings, needed", "attention error", "ppl_ada / ppl_full", "top-1 agreement",
                 "KL(full ‖ ada), nats"});
    for (const auto& c : s.configs)
      if (c.sweep)
        o << row({fmt("%g", c.tau), ms(c.get("r_over_T")), ms(c.get("flops_kept")), pct(c.get("gram_needed_savings")),
                  ms(c.get("attention_error")), ms(c.get("ppl_ratio")), ms(c.get("top1")), ms(c.get("kl"))});
  }

  o << "\n## Figures\n\n"
    << "- [Jaccard by layer](jaccard_by_layer.svg): J(S_l, S_l+1) of `full` and `cascade`; J vs the full selection per "
       "configuration\n"
    << "- [r/T by layer](r_over_T_by_layer.svg)\n"
    << "- [Attention error by layer](attention_error_by_layer.svg)\n"
    << "- [Quality against cost](quality_cost.svg): ppl ratio against FLOPs kept, `cascade` over the tau sweep\n\n";
  o << "![Jaccard by layer](jaccard_by_layer.svg)\n\n![r/T by layer](r_over_T_by_layer.svg)\n\n"
    << "![Attention error by layer](attention_error_by_layer.svg)\n\n![Quality against cost](quality_cost.svg)\n\n";

  o << "## Definitions\n\n"
    << "- r_l: representatives at layer l; r/T is the mean over layers of r_l / T.\n"
    << "- J(A, B) = |A ∩ B| / |A ∪ B|. J(S_l, S_l+1) is averaged over l = 0..L-2; \"J vs full\" compares a "
       "configuration's set with the full selection (SPEC 1) on the same layer features; its last-layer value is the "
       "drift over depth.\n"
    << "- Added / removed: |S_l \\ S_l-1| and |S_l-1 \\ S_l|, averaged over layers 1..L-1.\n"
    << "- Gram counts (SPEC 5): needed = causal inner products (row t > column s) of the columns the rule uses "
       "(T(T-1)/2 per layer for the full selection); computed = inner products the kernels evaluate. Savings = 1 - "
       "sum over layers / the same sum for `full`, per window.\n"
    << "- End to end over the window's T-1 next-token predictions: ppl ratio = exp(mean NLL_ada - mean NLL_full); "
       "top-1 agreement = fraction of positions whose argmax equals exact attention's; KL(full ‖ ada) = mean over "
       "positions of sum_v p_full (log p_full - log p_ada), softmax in double.\n"
    << "- Attention error at layer l: ||O_ada - O_full||_F / ||O_full||_F, exact attention run on the same layer input.\n"
    << "- FLOPs kept (multiply-add = 2), with d = d_model, d_q = heads x head_dim, d_kv = kv_heads x head_dim: "
       "P(n) = 2 n d (d_q + 2 d_kv) + 2 n d_q d, A(n) = 2 * 2 * d_q * n(n+1)/2. Reps mode: sum_l [P(r_l) + A(r_l)] / "
       "sum_l [P(T) + A(T)]. All-queries: sum_l [P(T) + 2 * 2 * d_q * sum_t keys_l(t)] / the same denominator, "
       "keys_l(t) = #{s in S_l, s <= t} + (1 if t is not in S_l).\n";
  write_file(file, o.str());
}

void write_frontier_report_md(const StudyRun& run, const StudySummary& s, const ArchSpec& a, const StudyInfo& info,
                              const std::filesystem::path& file) {
  const StudyParams& p = run.params;
  const int64_t C = p.ctx - p.continuation;
  std::ostringstream o;
  o << "# Continuation study: " << std::filesystem::path(p.model).filename().string() << " on "
    << std::filesystem::path(p.text).filename().string() << ", T = " << p.ctx << " (context " << C
    << " + continuation " << p.continuation << ")\n\n";
  o << "Every figure is mean ± sample standard deviation over " << s.windows
    << " windows (each window's value first, then the statistics over windows).\n\n## Run\n\n";
  run_lines(o, run, s, a);
  o << "- Protocol: continuation (SPEC 8): each configuration processes the context of C = " << C
    << " tokens in one forward (KV methods: exact prefill, then compression; ADA: its own prefill), then the "
    << p.continuation << " continuation tokens in one chunked forward on that cache, positions continuing at C\n";
  o << "- Methods: ";
  for (size_t i = 0; i < p.methods.size(); ++i) o << (i ? ", " : "") << "`" << p.methods[i] << "`";
  o << "; KV budgets";
  for (double b : p.budgets) o << " " << fmt("%g", b);
  o << "; ADA at tau = " << fmt("%g", p.tau);
  for (double t : p.tau_sweep) o << ", " << fmt("%g", t);
  o << "\n- Date: " << info.date << "\n";
  if (!info.commit.empty()) o << "- Engine commit: " << info.commit << "\n";
  o << "- CPU threads: " << info.threads << "\n";
  placement_lines(o, run);
  o << "- Exact attention: perplexity over the scored positions " << ms(s.ppl_exact) << ", context + continuation "
    << ms(s.time_exact_total, 1e3) << " ms per window (phase total)\n\n";

  o << "## Frontier\n\n"
    << header({"configuration", "kept fraction", "ppl_method / ppl_exact", "KL(exact ‖ method), nats", "top-1 agreement",
               "time, ms (context + continuation)", "context, ms", "selection / compression, ms"});
  for (const auto& c : s.configs)
    o << row({"`" + c.name + "`", ms(c.get("kept_fraction")), ms(c.get("ppl_ratio")), ms(c.get("kl")), ms(c.get("top1")),
              ms(c.get("time_total"), 1e3), ms(c.get("time_context"), 1e3), ms(c.get("time_selection"), 1e3)});
  o << "\n## Kept fraction by layer\n\n";
  std::vector<std::string> head = {"configuration"};
  for (int64_t l = 0; l < s.layers; ++l) head.push_back(std::to_string(l));
  o << header(head);
  for (const auto& c : s.configs) {
    std::vector<std::string> cells = {"`" + c.name + "`"};
    for (int64_t l = 0; l < s.layers; ++l) cells.push_back(fmt("%.4g", c.layer(size_t(l), "kept_fraction").mean));
    o << row(cells);
  }
  o << "\n## Figures\n\n![Quality against memory](frontier_kept.svg)\n\n![Quality against time](frontier_time.svg)\n\n";
  o << "## Definitions\n\n"
    << "- Configurations: the method item as given to --methods (`NAME[+VARIANT...]`), then `@` and its point: the "
       "kept-fraction budget of a KV method (`snapkv@0.25`), the tau of ADA (`ada@tau=0.3`); `full` is exact attention "
       "run through the same two forwards.\n"
    << "- Scored positions: the " << p.continuation - 1 << " next-token predictions inside the window made by the "
       "continuation's forward, logit rows 0..M-2 predicting tokens C+1..T-1 (the prediction of token C comes from the "
       "context's forward, before any compression).\n"
    << "- ppl ratio = exp(mean NLL_method - mean NLL_exact) over those positions; top-1 agreement = fraction of "
       "positions whose argmax equals exact attention's; KL(exact ‖ method) = mean over positions of sum_v p_exact "
       "(log p_exact - log p_method), softmax in double.\n"
    << "- Kept fraction, per layer, after the context: KV methods kept / C, mean over KV heads (on the GPU: the "
       "cache's size over exact attention's after the same context); ADA r_l / C; exact attention 1. The table's value "
       "is the mean over layers.\n"
    << "- Time: wall seconds of the context's forward plus the continuation's (model placement as above), per window; "
       "one untimed exact forward before the first window absorbs one-time work (weight widening, GPU library set-up).\n";
  write_file(file, o.str());
}

std::vector<std::string> write_study_outputs(const StudyRun& run, const ArchSpec& a, const StudyInfo& info,
                                             const std::filesystem::path& out_dir) {
  const StudySummary s = summarize(run);
  if (s.protocol == StudyProtocol::continuation) write_frontier_report_md(run, s, a, info, out_dir / "report.md");
  else write_report_md(run, s, a, info, out_dir / "report.md");
  write_metrics_json(run, s, a, info, out_dir / "metrics.json");
  write_per_layer_csv(run, out_dir / "per_layer.csv");
  std::vector<std::string> names = {"report.md", "metrics.json", "per_layer.csv"};
  for (auto& f : write_study_figures(s, out_dir)) names.push_back(f);
  return names;
}

}  // namespace cascade
