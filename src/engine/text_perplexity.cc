#include "engine/text_perplexity.h"

#include <cmath>

namespace cascade::engine {

nlohmann::json TextPerplexity::report() const {
  const PerplexityResult& r = result;
  auto windows = nlohmann::json::array();
  for (const auto& w : r.windows)
    windows.push_back({{"begin", w.begin}, {"end", w.end}, {"scored", w.scored}, {"nll", w.nll}});
  return {{"model", model}, {"text", text},     {"ctx", ctx},          {"stride", stride},
          {"ppl", r.ppl},   {"nll", r.nll},     {"scored", r.scored},  {"tokens", r.tokens},
          {"complete", complete}, {"windows", windows}};
}

TextPerplexity text_perplexity(const Model& m, const Tokenizer& tok, const std::string& model_path,
                               const std::string& text_path, const std::string& text, const PerplexityOptions& o,
                               const AttentionFactory* attention,
                               const std::function<void(const TextPerplexity&, int64_t done, int64_t total)>& on_window) {
  const std::vector<int32_t> ids = tok.encode(text, true);
  TextPerplexity run;
  run.model = model_path;
  run.text = text_path;
  run.ctx = o.ctx ? o.ctx : m.spec().max_positions;
  run.stride = o.stride ? o.stride : run.ctx;
  run.result.tokens = int64_t(ids.size());
  const PerplexityResult r = perplexity(m, ids, o, attention, [&](const WindowResult& w, int64_t done, int64_t total) {
    PerplexityResult& so_far = run.result;
    so_far.windows.push_back(w);
    so_far.nll += w.nll;
    so_far.scored += w.scored;
    so_far.ppl = std::exp(so_far.nll / double(so_far.scored));
    if (on_window) on_window(run, done, total);
  });
  run.result = r;
  run.complete = true;
  return run;
}

}  // namespace cascade::engine
