// cascade generate: the engine's generate loop (engine/generate.h) streaming text to stdout as
// complete UTF-8 characters. Timing goes to stderr.
#include <cstdio>

#include "attention_flags.h"
#include "commands.h"
#include "engine/generate.h"
#include "model/model_tokenizer.h"

namespace cascade::cli {

void add_generate(CLI::App& app) {
  auto* c = app.add_subcommand("generate", "Generate text from a prompt (greedy when --temperature is 0)");
  struct Opts {
    engine::AttentionOptions att;
    std::string model, tokenizer, prompt;
    engine::GenerateOptions gen;
  };
  auto o = std::make_shared<Opts>();
  add_attention_flags(c, o->att);
  SamplingOptions& sampling = o->gen.sampling;
  c->add_option("--model", o->model, "Model checkpoint (directory, .bin or .gguf)")->required();
  c->add_option("--prompt", o->prompt, "Prompt text (the tokenizer's BOS, if it has one, is prepended)")->required();
  c->add_option("--tokenizer", o->tokenizer, "Tokenizer file, if not beside the model");
  c->add_option("--max-new-tokens", o->gen.max_new_tokens, "Tokens to generate")->capture_default_str()->check(CLI::NonNegativeNumber);
  c->add_option("--temperature", sampling.temperature, "Sampling temperature; 0 = greedy")->capture_default_str();
  c->add_option("--top-k", sampling.top_k, "Keep the k most likely tokens; 0 = all")->capture_default_str();
  c->add_option("--top-p", sampling.top_p, "Nucleus sampling mass")->capture_default_str();
  c->add_option("--seed", sampling.seed, "Random seed for sampling")->capture_default_str();
  c->add_flag("--ignore-eos", o->gen.ignore_eos, "Keep generating past the end-of-sequence token");
  c->callback([o] {
    engine::check_generate_options(o->gen);
    const auto attention = engine::make_attention(o->att);
    auto m = Model::load(o->model);
    engine::place_model(*m, o->att);
    auto tok = model_tokenizer(*m, o->model, o->tokenizer);
    const auto print = [](const std::string& piece) {
      std::fputs(piece.c_str(), stdout);
      std::fflush(stdout);
    };
    const engine::Generation g = engine::generate(*m, *tok, attention.get(), o->prompt, o->gen, {print, {}});
    if (g.stop == engine::StopReason::context_full)
      std::fprintf(stderr, "\n[stopped: the model's context of %lld tokens is full]\n", (long long)m->spec().max_positions);
    std::fputs("\n", stdout);
    std::fflush(stdout);
    const auto generated = (long long)g.ids.size();
    std::fprintf(stderr, "[prompt %lld tokens in %.3fs (%.1f tok/s); generated %lld tokens in %.3fs (%.1f tok/s)]\n",
                 (long long)g.prompt_tokens, g.prefill_s, double(g.prompt_tokens) / g.prefill_s, generated, g.decode_s,
                 generated ? double(generated) / g.decode_s : 0.0);
  });
}

}  // namespace cascade::cli
