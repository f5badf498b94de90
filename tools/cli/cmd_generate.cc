// cascade generate: prefill the prompt in one batched pass, then decode token by token through the
// cache, streaming text to stdout as complete UTF-8 characters. Timing goes to stderr.
#include <chrono>
#include <cstdio>

#include "attention_flags.h"
#include "commands.h"
#include "core/error.h"
#include "model/model.h"
#include "model/model_tokenizer.h"
#include "model/sampler.h"

namespace cascade::cli {

void add_generate(CLI::App& app) {
  auto* c = app.add_subcommand("generate", "Generate text from a prompt (greedy when --temperature is 0)");
  struct Opts {
    AttentionFlags att;
    std::string model, tokenizer, prompt;
    int64_t max_new = 64;
    SamplingOptions sampling;
    bool ignore_eos = false;
  };
  auto o = std::make_shared<Opts>();
  add_attention_flags(c, o->att);
  c->add_option("--model", o->model, "Model checkpoint (directory, .bin or .gguf)")->required();
  c->add_option("--prompt", o->prompt, "Prompt text (the tokenizer's BOS, if it has one, is prepended)")->required();
  c->add_option("--tokenizer", o->tokenizer, "Tokenizer file, if not beside the model");
  c->add_option("--max-new-tokens", o->max_new, "Tokens to generate")->capture_default_str()->check(CLI::NonNegativeNumber);
  c->add_option("--temperature", o->sampling.temperature, "Sampling temperature; 0 = greedy")->capture_default_str();
  c->add_option("--top-k", o->sampling.top_k, "Keep the k most likely tokens; 0 = all")->capture_default_str();
  c->add_option("--top-p", o->sampling.top_p, "Nucleus sampling mass")->capture_default_str();
  c->add_option("--seed", o->sampling.seed, "Random seed for sampling")->capture_default_str();
  c->add_flag("--ignore-eos", o->ignore_eos, "Keep generating past the end-of-sequence token");
  c->callback([o] {
    Sampler sampler(o->sampling);
    const auto attention = make_attention(o->att);
    auto m = Model::load(o->model);
    place_model(*m, o->att);
    auto tok = model_tokenizer(*m, o->model, o->tokenizer);
    std::vector<int32_t> ids = tok->encode(o->prompt, true);
    if (ids.empty()) fail("the prompt is empty and the tokenizer adds no BOS token: nothing to condition on");
    const int64_t ctx = m->spec().max_positions;
    if (int64_t(ids.size()) > ctx)
      fail("the prompt is ", ids.size(), " tokens, longer than the model's context of ", ctx, " tokens");

    using Clock = std::chrono::steady_clock;
    Sequence s = m->new_sequence(attention.get());
    auto t0 = Clock::now();
    Tensor logits = m->forward(s, ids, true);
    const double prefill_s = std::chrono::duration<double>(Clock::now() - t0).count();
    StreamDecoder out(*tok);
    int64_t generated = 0;
    t0 = Clock::now();
    for (; generated < o->max_new; ++generated) {
      const int32_t next = sampler.next(logits.data(), logits.dim(1));
      if (!o->ignore_eos && tok->eos_id() && next == *tok->eos_id()) break;
      std::fputs(out.push(next).c_str(), stdout);
      std::fflush(stdout);
      if (s.length() == ctx) {
        std::fprintf(stderr, "\n[stopped: the model's context of %lld tokens is full]\n", (long long)ctx);
        ++generated;
        break;
      }
      logits = m->forward(s, std::vector<int32_t>{next}, true);
    }
    std::fputs(out.flush().c_str(), stdout);
    std::fputs("\n", stdout);
    const double decode_s = std::chrono::duration<double>(Clock::now() - t0).count();
    std::fprintf(stderr, "[prompt %zu tokens in %.3fs (%.1f tok/s); generated %lld tokens in %.3fs (%.1f tok/s)]\n",
                 ids.size(), prefill_s, double(ids.size()) / prefill_s, (long long)generated, decode_s,
                 generated ? double(generated) / decode_s : 0.0);
  });
}

}  // namespace cascade::cli
