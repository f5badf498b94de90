// Perplexity of a text as `cascade perplexity` and cascade.Model.perplexity compute and report it:
// the whole text tokenized once (the tokenizer's BOS, if any, at its start), then the sliding
// windows of eval/perplexity.h. The report is one JSON object, the same from both front ends.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "eval/perplexity.h"
#include "tokenizer/tokenizer.h"

namespace cascade::engine {

struct TextPerplexity {
  std::string model, text;  // the paths, as given
  int64_t ctx = 0, stride = 0;  // as run: the defaults resolved
  PerplexityResult result;  // so far
  bool complete = false;

  // {model, text, ctx, stride, ppl, nll, scored, tokens, complete, windows: [{begin, end, scored, nll}]}
  nlohmann::json report() const;
};

// on_window sees the run so far after each window (progress, a report rewritten as it goes).
TextPerplexity text_perplexity(const Model& m, const Tokenizer& tok, const std::string& model_path,
                               const std::string& text_path, const std::string& text, const PerplexityOptions& o,
                               const AttentionFactory* attention,
                               const std::function<void(const TextPerplexity&, int64_t done, int64_t total)>& on_window = {});

}  // namespace cascade::engine
