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
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "attention/ada_attention.h"
#include "model/model.h"

namespace cascade {

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
};

// One configuration of ADA, named as in every output.
struct StudyConfig {
  std::string name;
  AdaOptions ada;         // measure_error / compare_full off; run_window turns them on where needed
  bool sweep = false;     // one of the cascade@tau=X points
  bool exact_trajectory = false;  // exact attention, selections on its features only (study_observer.h)
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
};

struct WindowRaw {
  int64_t index = 0, begin = 0, T = 0;
  double nll_full = 0;    // mean NLL under exact attention
  PhaseTimes exact_times;
  std::vector<ConfigRaw> configs;  // in study_configs order
};

// Runs one window (tokens [T]) through exact attention and every configuration; tick() after each
// configuration.
WindowRaw run_window(const Model& m, std::span<const int32_t> tokens, int64_t index, int64_t begin,
                     const std::vector<StudyConfig>& configs, const std::function<void()>& tick = {});

struct StudyRun {
  StudyParams params;
  std::vector<StudyConfig> configs;
  std::vector<WindowRaw> windows;  // ascending index
  int64_t resumed = 0;             // windows loaded from an earlier run
};

// Runs the study with its state in out_dir: params.json, then windows.jsonl grown by one line per
// finished window. If out_dir already holds a study, its finished windows are kept when params.json
// matches p, and it is cascade::Error when it does not (unless overwrite, which starts afresh).
// ids: the whole tokenized text (p.n_tokens of them). Progress on stderr unless quiet. An empty
// out_dir keeps nothing on disk. tick() runs after each configuration of each window (the Python
// binding checks for Ctrl-C there).
StudyRun run_study(const Model& m, std::span<const int32_t> ids, const StudyParams& p,
                   const std::filesystem::path& out_dir, bool overwrite, bool quiet,
                   const std::function<void()>& tick = {});

}  // namespace cascade
