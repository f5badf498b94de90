// cascade bench: prefill and decode speed, llama-bench style. Random token ids (seeded) of
// --prompt-tokens are prefilled in one pass, then --gen-tokens are decoded one at a time through the
// cache; each repetition starts a new sequence. Reports mean ± std over repetitions (after one
// warm-up), as a table or JSON. Timings are wall clock of this process on this machine. The prefill
// computes the last position's logits (what generation needs) unless --all-logits asks for every
// position's, the work of `cascade logits` and of Python's Model.logits (on cuda they stay on the
// device, as Python's do).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <random>

#include <nlohmann/json.hpp>

#include "attention_flags.h"
#include "commands.h"
#include "core/error.h"
#include "model/model.h"
#include "ops/attention_cudnn.h"

namespace cascade::cli {

namespace {
struct Stat {
  double mean = 0, sd = 0;
};
Stat stat(const std::vector<double>& v) {
  Stat s;
  for (double x : v) s.mean += x;
  s.mean /= double(v.size());
  for (double x : v) s.sd += (x - s.mean) * (x - s.mean);
  s.sd = v.size() > 1 ? std::sqrt(s.sd / double(v.size() - 1)) : 0;
  return s;
}
}  // namespace

void add_bench(CLI::App& app) {
  auto* c = app.add_subcommand("bench", "Prefill and decode tokens per second (mean ± std over repetitions)");
  struct Opts {
    engine::AttentionOptions att;
    std::string model;
    int64_t prompt = 512, gen = 32, reps = 3;
    uint64_t seed = 0;
    bool json = false, all_logits = false;
  };
  auto o = std::make_shared<Opts>();
  add_attention_flags(c, o->att);
  c->add_option("--model", o->model, "Model checkpoint (directory, .bin or .gguf)")->required();
  c->add_option("--prompt-tokens", o->prompt, "Tokens prefilled in one pass")->capture_default_str()->check(CLI::PositiveNumber);
  c->add_option("--gen-tokens", o->gen, "Tokens decoded one at a time after the prefill")->capture_default_str()->check(CLI::NonNegativeNumber);
  c->add_option("--reps", o->reps, "Timed repetitions (after one warm-up)")->capture_default_str()->check(CLI::PositiveNumber);
  c->add_option("--seed", o->seed, "Seed of the random token ids")->capture_default_str();
  c->add_flag("--all-logits", o->all_logits,
              "Prefill computes the logits of every prompt position (as `cascade logits` and Python's Model.logits;"
              " on cuda they stay on the device), not only the last one's");
  c->add_flag("--json", o->json, "Print JSON instead of a table");
  c->callback([o] {
    const auto attention = engine::make_attention(o->att);
    auto m = Model::load(o->model);
    engine::place_model(*m, o->att);
    if (o->prompt + o->gen > m->spec().max_positions)
      fail("--prompt-tokens + --gen-tokens = ", o->prompt + o->gen, " exceeds the model's context of ", m->spec().max_positions);
    std::mt19937_64 rng(o->seed);
    std::uniform_int_distribution<int32_t> tok(0, int32_t(m->spec().vocab_size - 1));
    std::vector<int32_t> ids(static_cast<size_t>(o->prompt + o->gen));
    for (auto& t : ids) t = tok(rng);
    using Clock = std::chrono::steady_clock;
    std::vector<double> pre, dec, sel, proj, att;
    for (int64_t r = 0; r <= o->reps; ++r) {
      Sequence s = m->new_sequence(attention.get());
      auto t0 = Clock::now();
      const std::span<const int32_t> prompt(ids.data(), size_t(o->prompt));
      if (o->all_logits && m->device() == Device::Cuda)
        (void)m->forward_on_device(s, prompt);  // returns once the logits are written
      else
        (void)m->forward(s, prompt, !o->all_logits);
      const double tp = std::chrono::duration<double>(Clock::now() - t0).count();
      const PhaseTimes ph = s.times();
      t0 = Clock::now();
      for (int64_t g = 0; g < o->gen; ++g) m->forward(s, std::span<const int32_t>(&ids[size_t(o->prompt + g)], 1), true);
      const double td = std::chrono::duration<double>(Clock::now() - t0).count();
      if (r == 0) continue;  // warm-up
      pre.push_back(double(o->prompt) / tp);
      sel.push_back(ph.selection);
      proj.push_back(ph.projections);
      att.push_back(ph.attention);
      if (o->gen) dec.push_back(double(o->gen) / td);
    }
    const Stat p = stat(pre), s = stat(sel), d = dec.empty() ? Stat{} : stat(dec);
    // Who ran the plain causal attention: the choice, and whether cuDNN could take it here.
    const std::string kernel =
        m->device() == Device::Cuda ? o->att.attention_kernel + "; " + ops::gpu::cudnn_sdpa::describe() : "cpu";
    if (o->json) {
      std::vector<double> pre_s;
      for (double tps : pre) pre_s.push_back(double(o->prompt) / tps);
      std::sort(pre_s.begin(), pre_s.end());
      std::cout << nlohmann::json{{"model", o->model}, {"attention", o->att.attention}, {"device", o->att.device},
                                  {"dtype", dtype_name(m->compute_dtype())}, {"attention_kernel", kernel},
                                  {"prefill_s_median", pre_s[pre_s.size() / 2]}, {"prefill_s_min", pre_s.front()}, {"prompt_tokens", o->prompt},
                                  {"gen_tokens", o->gen}, {"reps", o->reps}, {"all_logits", o->all_logits}, {"prefill_tok_s", p.mean}, {"prefill_tok_s_sd", p.sd},
                                  {"decode_tok_s", d.mean}, {"decode_tok_s_sd", d.sd}, {"prefill_selection_s", s.mean},
                                  {"prefill_projections_s", stat(proj).mean}, {"prefill_attention_s", stat(att).mean},
                                  {"prefill_s", double(o->prompt) / p.mean}}
                       .dump(1)
                << "\n";
      return;
    }
    std::printf("| model | device | dtype | attention | prompt | gen | prefill tok/s | decode tok/s |\n|---|---|---|---|---|---|---|---|\n");
    std::printf("| %s | %s | %s | %s | %lld | %lld | %.1f ± %.1f | %.1f ± %.1f |\n", o->model.c_str(), o->att.device.c_str(),
                dtype_name(m->compute_dtype()).c_str(), o->att.attention.c_str(),
                (long long)o->prompt, (long long)o->gen, p.mean, p.sd, d.mean, d.sd);
    if (m->device() == Device::Cuda) std::printf("\nattention kernel: %s\n", kernel.c_str());
  });
}

}  // namespace cascade::cli
