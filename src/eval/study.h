// The ADA study (SPEC section 5): how many tokens each layer keeps, how stable the sets are
// across layers, what the cascade saves in Gram operations, and what the compressed attention costs
// in quality, measured on non-overlapping windows of a text against exact attention.
//
// Design: the text is tokenized once and cut into windows of T tokens [k*T, (k+1)*T); a window is
// the unit of work, of resumption and of statistics (every figure is a mean and standard deviation
// over windows). Each window runs exact attention once, then every ADA configuration (a named
// AdaOptions) twice: once with measure_error / compare_full for the traces, once plain for the phase
// times, because Model::forward's total would otherwise include the study's own measurements. The
// `exact-trajectory` configuration runs exact attention and only selects on its features
// (study_observer.h says why both trajectories are measured).
// Only what the report needs survives a window (counts and scalars, not the sets), so a long run
// stays small on disk; study_store.h writes it as it goes.
//
// The continuation protocol (SPEC 8, study_continuation.cc) compares every method, the peers
// included, on the same footing: a window of T tokens is a context of C = T - M tokens and a
// continuation of M. Each configuration (its attention factory, made by the engine from a method
// item such as `snapkv` at a budget or `ada+all-queries` at a tau) processes the context in one
// forward (peers: exact prefill, then compression; ADA: its own prefill), then the continuation in
// one chunked forward on that cache, positions continuing at C. Scored positions: the M - 1
// next-token predictions inside the window, i.e. the continuation's logit rows 0..M-2 predicting
// tokens C+1..T-1 (row M-1 predicts past the window; the prediction of token C is made by the
// context's forward, before any compression, so it would not measure the cache). The reference is
// exact attention run the same way (context, then continuation) on the same window.
#include <memory>
#pragma once
#include <cstdint>
#include <filesystem>
#include <limits>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "attention/ada_attention.h"
#include "attention/layer_attention.h"
#include "model/model.h"

namespace cascade {

// prefill: SPEC 5, every position of a window under ADA's prefill. continuation: SPEC 8.
enum class StudyProtocol { prefill, continuation };
StudyProtocol parse_study_protocol(const std::string& name);  // cascade::Error naming --protocol
const char* to_string(StudyProtocol p);

// What the user asked for; params.json holds exactly this (a restart must match it).
struct StudyParams {
  std::string model, tokenizer, text;  // absolute paths (tokenizer "": the model's own, embedded or beside it)
  int64_t ctx = 0;                     // T, tokens per window
  int64_t windows = 0;                 // how many windows to pick at random; 0: all
  uint64_t seed = 0;                   // the pick, and the `random` configuration's sets
  double tau = 0.30;
  std::vector<double> tau_sweep;       // extra `cascade@tau=X` configurations
  select::Similarity similarity = select::Similarity::pearson;
  int64_t capped_k = 8;
  int64_t n_tokens = 0;                // tokens in the text (BOS included): a changed text or tokenizer
  StudyProtocol protocol = StudyProtocol::prefill;
  int64_t continuation = 256;          // M (continuation protocol)
  std::vector<std::string> methods;    // continuation: the method items as typed (engine/study_methods.h)
  std::vector<double> budgets = {0.1, 0.25, 0.5};  // continuation: the KV methods' kept fractions
  std::string device = "cpu", dtype;   // where the model runs (dtype "": the device's default)
  std::string attention_kernel = "auto";  // the GPU's plain causal attention (ops::AttentionKernel's names)
};

// One configuration of ADA, named as in every output.
struct StudyConfig {
  std::string name;
  AdaOptions ada;         // measure_error / compare_full off; run_window turns them on where needed
  bool sweep = false;     // one of the cascade@tau=X points
  bool exact_trajectory = false;  // exact attention, selections on its features only (study_observer.h)
  // Continuation protocol: the method item as typed (`ada+keys`), its point (budget or tau; NaN for
  // `full`) and the attention it runs (nullptr: exact attention).
  std::string method;
  double budget = std::numeric_limits<double>::quiet_NaN();
  std::shared_ptr<const AttentionFactory> factory;
};

// full, cascade, inherit, capped:K, random:SEED, cascade+all-queries, cascade+proportional,
// exact-trajectory (all at p.tau, greedy rule, p.similarity), then cascade@tau=X per sweep value.
// `full` is first: every Gram saving is against it. cascade::Error for a tau outside [0, 1) or a bad cap.
std::vector<StudyConfig> study_configs(const StudyParams& p);

// The windows to run: indices k of [k*T, (k+1)*T) over n tokens, ascending. All of them when
// p.windows == 0, else p.windows of them drawn uniformly without replacement with p.seed.
// cascade::Error if T exceeds the model's context (max_positions), T < 2, the text has fewer than T
// tokens, or more windows are asked for than it has.
std::vector<int64_t> study_windows(const StudyParams& p, int64_t max_positions);

// Per layer l of one configuration on one window. For `exact-trajectory` the set is the cascade's on
// exact attention's features, attention_error is NaN and so are the end-to-end values and times of
// ConfigRaw (it approximates nothing).
struct LayerRaw {
  int64_t r = 0, added = 0, removed = 0, needed = 0, computed = 0;
  double gram_seconds = 0;      // the selection's own timer (cost.seconds) in the plain run
  double attention_error = 0;   // ||O_ada - O_full||_F / ||O_full||_F on the same layer input
  double jaccard_vs_full = 0;   // J(S_l, full selection on the same features)
  double jaccard_next = -1;     // J(S_l, S_{l+1}); -1 at the last layer
  bool refreshed = false;       // capped: the cap was passed and the layer fully re-selected
};

struct ConfigRaw {
  std::string name;
  std::vector<LayerRaw> layers;
  double nll = 0;         // mean NLL of the window's T-1 next tokens under this configuration
  double top1 = 0;        // fraction of those T-1 positions whose argmax equals exact attention's
  double kl = 0;          // mean KL(exact || ada) over them, nats
  double flops_kept = 0;  // attention + projection FLOPs relative to exact (study_metrics.h)
  PhaseTimes times;       // of the plain run (seconds)
  // Continuation protocol only (layers stays empty there): per layer the kept fraction of the KV
  // entries after the context (study_continuation.cc says how it is read), and the wall time of the
  // context's and the continuation's forward.
  std::vector<double> kept;
  double seconds_context = 0, seconds_continuation = 0;
  // The layers this record holds under either protocol.
  size_t layer_count() const { return kept.empty() ? layers.size() : kept.size(); }
};

struct WindowRaw {
  int64_t index = 0, begin = 0, T = 0;
  int64_t context = 0;    // continuation protocol: C (0 under the prefill protocol)
  double nll_full = 0;    // mean NLL under exact attention (continuation: over the scored positions)
  PhaseTimes exact_times;
  std::vector<ConfigRaw> configs;  // in study_configs order
};

// Runs one window (tokens [T]) through exact attention and every configuration; tick() after each
// configuration.
WindowRaw run_window(const Model& m, std::span<const int32_t> tokens, int64_t index, int64_t begin,
                     const std::vector<StudyConfig>& configs, const std::function<void()>& tick = {});
// The continuation protocol on one window (tokens [T], the last M = continuation of them scored).
// progress(name) after each configuration.
WindowRaw run_continuation_window(const Model& m, std::span<const int32_t> tokens, int64_t continuation,
                                  int64_t index, int64_t begin, const std::vector<StudyConfig>& configs,
                                  const std::function<void(const std::string&)>& progress = {});

struct StudyRun {
  StudyParams params;
  std::vector<std::string> notes;  // what the report must say about configurations left out
  std::vector<StudyConfig> configs;
  std::vector<WindowRaw> windows;  // ascending index
  int64_t resumed = 0;             // windows loaded from an earlier run
};

// Runs the study of `configs` (study_configs(p) for the prefill protocol; the engine's for the
// continuation protocol) with its state in out_dir: params.json, then windows.jsonl grown by one line per
// finished window. If out_dir already holds a study, its finished windows are kept when params.json
// matches p, and it is cascade::Error when it does not (unless overwrite, which starts afresh).
// ids: the whole tokenized text (p.n_tokens of them). Progress on stderr unless quiet. An empty
// out_dir keeps nothing on disk. tick() runs after each configuration of each window (the Python
// binding checks for Ctrl-C there).
StudyRun run_study(const Model& m, std::span<const int32_t> ids, const StudyParams& p,
                   std::vector<StudyConfig> configs, const std::filesystem::path& out_dir, bool overwrite,
                   bool quiet, const std::function<void()>& tick = {});

}  // namespace cascade
