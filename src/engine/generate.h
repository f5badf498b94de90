// Text generation as `cascade generate` and cascade.Model.generate do it: the prompt (with the
// tokenizer's BOS, if any) prefilled in one batched pass, then one token at a time through the
// KV cache until max_new_tokens, the end-of-sequence token (unless ignore_eos), a full context or
// a cancel request. Text is streamed as complete UTF-8 characters.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "model/model.h"
#include "model/sampler.h"
#include "tokenizer/tokenizer.h"

namespace cascade::engine {

struct GenerateOptions {
  int64_t max_new_tokens = 64;
  SamplingOptions sampling;  // greedy at temperature 0
  bool ignore_eos = false;   // keep going past the end-of-sequence token
};

// Checks the options before a model is loaded (cascade::Error: negative max_new_tokens, sampling
// out of range).
void check_generate_options(const GenerateOptions& o);

enum class StopReason { max_new_tokens, eos, context_full, cancelled };

struct Generation {
  int64_t prompt_tokens = 0;
  std::vector<int32_t> ids;  // the generated tokens (an end-of-sequence token that stopped it excluded)
  std::string text;          // their text, as streamed
  StopReason stop = StopReason::max_new_tokens;
  double prefill_s = 0, decode_s = 0;  // wall clock
};

struct GenerateHooks {
  std::function<void(const std::string&)> on_text;  // each run of complete characters, as it is made
  std::function<bool()> cancelled;                  // asked before each token; true stops
};

// cascade::Error for an empty prompt without BOS or one longer than the model's context.
Generation generate(const Model& m, const Tokenizer& tok, const AttentionFactory* attention, std::string_view prompt,
                    const GenerateOptions& o, const GenerateHooks& hooks = {});

}  // namespace cascade::engine
