#include "eval/perplexity.h"

#include <cmath>
#include <vector>

#include "core/error.h"

namespace cascade {

std::vector<Window> perplexity_windows(int64_t n, const PerplexityOptions& o) {
  if (o.ctx < 2) fail("--ctx must be at least 2, got ", o.ctx);
  if (o.stride < 1 || o.stride > o.ctx) fail("--stride must be in [1, ctx], got ", o.stride);
  if (n < 2) fail("the text has ", n, " tokens; perplexity needs at least 2");
  std::vector<Window> w;
  int64_t prev_end = 0;
  for (int64_t b = 0; b < n; b += o.stride) {
    const int64_t e = std::min(b + o.ctx, n);
    w.push_back({b, e, std::max(b + 1, prev_end)});
    prev_end = e;
    if (e == n || (o.max_windows > 0 && int64_t(w.size()) == o.max_windows)) break;
  }
  return w;
}

PerplexityResult perplexity(const Model& m, std::span<const int32_t> ids, const PerplexityOptions& opt,
                            const AttentionFactory* attention,
                            const std::function<void(const WindowResult&, int64_t, int64_t)>& on_window) {
  PerplexityOptions o = opt;
  if (o.ctx == 0) o.ctx = m.spec().max_positions;
  if (o.stride == 0) o.stride = o.ctx;
  if (o.ctx > m.spec().max_positions)
    fail("--ctx ", o.ctx, " is longer than the model's context of ", m.spec().max_positions, " tokens");
  const auto windows = perplexity_windows(int64_t(ids.size()), o);
  PerplexityResult r;
  r.tokens = int64_t(ids.size());
  for (size_t i = 0; i < windows.size(); ++i) {
    const Window& w = windows[i];
    Sequence s = m.new_sequence(attention);
    // Token t is scored by the logits of row t - begin - 1; summed in token order.
    const std::vector<double> nll = m.next_token_nll(s, ids.subspan(size_t(w.begin), size_t(w.end - w.begin)),
                                                     w.first_scored - w.begin - 1);
    WindowResult wr{w.begin, w.end, 0, 0};
    for (double x : nll) wr.nll += x;
    wr.scored = int64_t(nll.size());
    r.nll += wr.nll;
    r.scored += wr.scored;
    r.windows.push_back(wr);
    if (on_window) on_window(wr, int64_t(i + 1), int64_t(windows.size()));
  }
  r.ppl = std::exp(r.nll / double(r.scored));
  return r;
}

}  // namespace cascade
