#include "engine/generate.h"

#include <chrono>

#include "core/error.h"

namespace cascade::engine {

namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
}  // namespace

void check_generate_options(const GenerateOptions& o) {
  CASCADE_CHECK(o.max_new_tokens >= 0, "max_new_tokens must be >= 0, got ", o.max_new_tokens);
  (void)Sampler(o.sampling);
}

Generation generate(const Model& m, const Tokenizer& tok, const AttentionFactory* attention, std::string_view prompt,
                    const GenerateOptions& o, const GenerateHooks& hooks) {
  check_generate_options(o);
  Sampler sampler(o.sampling);
  const std::vector<int32_t> ids = tok.encode(prompt, true);
  if (ids.empty()) fail("the prompt is empty and the tokenizer adds no BOS token: nothing to condition on");
  const int64_t ctx = m.spec().max_positions;
  if (int64_t(ids.size()) > ctx)
    fail("the prompt is ", ids.size(), " tokens, longer than the model's context of ", ctx, " tokens");

  Generation g;
  g.prompt_tokens = int64_t(ids.size());
  const auto emit = [&](const std::string& piece) {
    g.text += piece;
    if (hooks.on_text && !piece.empty()) hooks.on_text(piece);
  };
  Sequence s = m.new_sequence(attention);
  auto t0 = Clock::now();
  Tensor logits = m.forward(s, ids, true);
  g.prefill_s = seconds_since(t0);
  StreamDecoder out(tok);
  t0 = Clock::now();
  while (int64_t(g.ids.size()) < o.max_new_tokens) {
    if (hooks.cancelled && hooks.cancelled()) {
      g.stop = StopReason::cancelled;
      break;
    }
    const int32_t next = sampler.next(logits.data(), logits.dim(1));
    if (!o.ignore_eos && tok.eos_id() && next == *tok.eos_id()) {
      g.stop = StopReason::eos;
      break;
    }
    g.ids.push_back(next);
    emit(out.push(next));
    if (s.length() == ctx) {
      g.stop = StopReason::context_full;
      break;
    }
    if (int64_t(g.ids.size()) == o.max_new_tokens) break;  // no logits that nothing would read
    logits = m.forward(s, std::vector<int32_t>{next}, true);
  }
  emit(out.flush());
  g.decode_s = seconds_since(t0);
  return g;
}

}  // namespace cascade::engine
