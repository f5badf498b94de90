// Sliding-window perplexity, Hugging Face's documented convention: windows [b, b + ctx) for
// b = 0, stride, 2*stride, ... over the whole token stream (the tokenizer's prefix, e.g. BOS, once
// at its start); a window scores the tokens at indices >= the previous window's end and > b (nothing
// in the window predicts its first token); the last window is the one reaching the end. With
// stride = ctx (the default) windows do not overlap and each window's first token goes unscored.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "model/model.h"

namespace cascade {

struct PerplexityOptions {
  int64_t ctx = 0;          // window length; 0: the model's context
  int64_t stride = 0;       // 0: ctx
  int64_t max_windows = 0;  // 0: all
};

struct WindowResult {
  int64_t begin = 0, end = 0, scored = 0;
  double nll = 0;  // sum over the scored tokens
};

struct PerplexityResult {
  double ppl = 0, nll = 0;
  int64_t scored = 0, tokens = 0;
  std::vector<WindowResult> windows;
};

// Window boundaries [begin, end) and the first scored index of each, for n tokens.
struct Window {
  int64_t begin, end, first_scored;
};
std::vector<Window> perplexity_windows(int64_t n, const PerplexityOptions& o);

// on_window is called after each window (progress, incremental output).
PerplexityResult perplexity(const Model& m, std::span<const int32_t> ids, const PerplexityOptions& o,
                            const AttentionFactory* attention = nullptr,
                            const std::function<void(const WindowResult&, int64_t done, int64_t total)>& on_window = {});

}  // namespace cascade
