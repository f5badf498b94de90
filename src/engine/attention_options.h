// Where a model runs and how its attention is computed: the options that `cascade generate`,
// `perplexity`, `logits` and `bench` take as flags and cascade.Model takes as keywords. One table
// names each option once (keyword, flag, help, values) and one setter reads a value given as text,
// so both front ends accept, refuse and explain the same things.
#pragma once
#include <cmath>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "attention/ada_attention.h"
#include "attention/kv_press.h"
#include "model/model.h"

namespace cascade::engine {

struct AttentionOptions {
  std::string attention = "full";  // full (exact) | ada | ada-kv | a KV compression method (press::method_names)
  double kv_budget = NAN;          // the compression methods' kept fraction, in (0, 1]; NaN: not given
  std::string kv_seed = "0";       // random's seed, an unsigned integer
  std::string select = "cascade";  // select::parse_mode's syntax
  double tau = 0.30;
  std::string rule = "greedy";
  std::string features = "hidden";    // parse_ada_features
  std::string dense_layers = "0";     // a non-negative integer
  std::string similarity = "pearson";
  std::string queries = "reps";
  bool proportional = false;
  std::string reconstruct = "copy";  // SPEC 6: copy | lstsq (queries reps)
  std::string sinks = "0";           // SPEC 6: a non-negative integer (queries all; ada-kv)
  std::string window = "0";          // SPEC 6: a non-negative integer (queries all; ada-kv)
  std::string device = "cpu";
  std::string dtype;  // empty: f32 on the CPU, bf16 on the GPU
  std::string cuda_graphs = "on";
  std::string attention_kernel = "auto";  // ops::parse_attention_kernel's names
  std::string gram_precision = "f16-certified";  // select::gpu::parse_precision's names
};

struct OptionSpec {
  std::string name;  // Python keyword, e.g. "queries"
  std::string flag;  // command-line flag, e.g. "--ada-queries"
  std::variant<std::string AttentionOptions::*, double AttentionOptions::*, bool AttentionOptions::*> field;
  std::vector<std::string> choices;  // the values a text field takes; empty: checked by its parser
  std::string help;
  bool placement = false;  // where the model runs (device, dtype, cuda_graphs): Python's load() takes these

  bool is_flag() const { return std::holds_alternative<bool AttentionOptions::*>(field); }
};

// Every option, in the order help lists them.
const std::vector<OptionSpec>& attention_option_specs();
const OptionSpec* find_attention_option(const std::string& name);

// Sets option `name` from text (a flag: "true" or "false"); `label` names it in messages (the
// flag or the keyword). cascade::Error for an unknown name or a value the option refuses, e.g.
// "--attention: sparse not in {full,ada}" or "selection tau must be in [0, 1), got 1.5".
void set_attention_option(AttentionOptions& o, const std::string& name, const std::string& value,
                          const std::string& label);
// An option's value as text (help shows the defaults with it); empty for a number not given.
std::string attention_option_text(const AttentionOptions& o, const std::string& name);

AdaOptions ada_options(const AttentionOptions& o);
// ada-kv's KV-method options (the selection's from ada_options, plus sinks and window).
KvPressOptions ada_kv_options(const AttentionOptions& o);

// The attention factory of a sequence: nullptr for exact attention, else ADA (with the study's
// per-layer measurements when `measured`, for a trace) or a KV compression method, which needs
// --kv-budget (which nothing else takes); ada-kv is a KV method whose kept set is ADA's selection. Also checks the placement before any
// model is read: a CPU-only build, no GPU, a 16-bit dtype on the CPU or ADA options the GPU lacks
// (AttentionFactory::check_gpu) is a cascade::Error. The one place the engine's front ends build attention.
std::unique_ptr<AttentionFactory> make_attention(const AttentionOptions& o, bool measured = false);

// Moves a loaded model to the device and dtype the options name (uploads the weights for cuda),
// after the same placement checks.
void place_model(Model& m, const AttentionOptions& o);

}  // namespace cascade::engine
