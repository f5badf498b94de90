// cascade study: the ADA measurement tool (SPEC section 5) and the methods' continuation protocol
// (SPEC 8). Runs exact attention and a fixed set of ADA configurations (plus a tau sweep), or the
// --methods at their budgets and taus, over non-overlapping windows of a text and
// writes report.md, metrics.json, per_layer.csv and SVG figures into --out. The library part is
// src/eval/study*.h, set up by engine/study_driver.h; this file only turns flags into a StudyRequest
// and says where things went.
// A study resumes: the same command with the same --out continues where it stopped.
#include <cstdio>
#include <memory>

#include "commands.h"
#include "core/build_info.h"
#include "engine/attention_options.h"
#include "engine/study_driver.h"
#include "engine/study_methods.h"
#include "model/model_tokenizer.h"

namespace cascade::cli {

void add_study(CLI::App& app) {
  auto* c = app.add_subcommand(
      "study",
      "Measure ADA on a text (SPEC section 5). The text is tokenized once (BOS first, if the tokenizer has\n"
      "one) and cut into non-overlapping windows of --ctx tokens. Each window runs exact attention and the\n"
      "configurations full, cascade, inherit, capped:K, random:SEED, cascade+all-queries,\n"
      "cascade+proportional, exact-trajectory (at --tau) and cascade@tau=X for each --tau-sweep value.\n"
      "--protocol continuation (SPEC 8) compares methods instead: each window is a context of --ctx minus\n"
      "--continuation tokens, processed by each configuration (KV methods: exact prefill, then compression;\n"
      "ADA: its own prefill), then the continuation scored teacher-forced on that cache in one forward,\n"
      "against exact attention over its M-1 next-token predictions inside the window: ppl ratio,\n"
      "KL(exact || method), top-1 agreement, the kept fraction of KV entries and the wall time.\n"
      "Writes report.md, metrics.json, per_layer.csv and SVG figures into --out; params.json and\n"
      "windows.jsonl there let an interrupted study resume with the same command.");
  auto o = std::make_shared<engine::StudyRequest>();
  StudyParams& p = o->params;
  c->add_option("--model", p.model, "Model checkpoint (directory, .bin or .gguf)")->required();
  c->add_option("--text", p.text, "UTF-8 text file")->required();
  c->add_option("--ctx", p.ctx, "Window length T in tokens (at most the model's context)")->required();
  c->add_option("--windows", p.windows, "Windows drawn at random with --seed (0: all)")->capture_default_str();
  c->add_option("--seed", p.seed, "Seed of the window draw and of the random:SEED control")->capture_default_str();
  c->add_option("--tau", p.tau, "Gram threshold of every configuration but the sweep")->capture_default_str();
  c->add_option("--tau-sweep", p.tau_sweep, "Comma-separated taus for cascade@tau=X, e.g. 0,0.1,0.2")->delimiter(',');
  c->add_option("--similarity", o->similarity, "pearson (centred) or cosine")->capture_default_str();
  c->add_option("--capped-k", p.capped_k, "Cap of the capped:K configuration")->capture_default_str();
  c->add_option("--tokenizer", p.tokenizer, "Tokenizer file, if not beside the model");
  c->add_option("--protocol", o->protocol, "prefill (SPEC 5, the ADA configurations above) or continuation (SPEC 8)")
      ->capture_default_str();
  c->add_option("--continuation", o->continuation,
                "With --protocol continuation: M, the scored tokens at the end of each window (default 256)");
  std::string variants;  // three a line
  size_t n = 0;
  for (const auto& [name, meaning] : engine::study_variant_names()) {
    variants += std::string(n == 0 ? "" : n % 3 ? ", " : ",\n") + name + " (" + meaning + ")";
    ++n;
  }
  std::string methods;
  for (const auto& m : engine::default_study_methods()) methods += (methods.empty() ? "" : ",") + m;
  c->add_option("--methods", o->methods,
                "With --protocol continuation: comma-separated items NAME[+VARIANT...], NAME an --attention value,\n"
                "VARIANT one of\n" + variants + ",\nor KEYWORD=VALUE for an option keyword of cascade.Model (e.g. ada+all-queries,\n"
                "ada+select=inherit). KV methods run at each --budgets value (snapkv@0.25), ada-like ones at --tau\n"
                "and each --tau-sweep value (ada+all-queries@tau=0.3). Default " + methods)
      ->delimiter(',');
  c->add_option("--budgets", o->budgets,
                "With --protocol continuation: comma-separated kept fractions in (0, 1] for the KV methods (default 0.1,0.25,0.5)")
      ->delimiter(',');
  c->add_option("--device", p.device,
                "cpu or cuda (a CUDA build and a GPU); on cuda the prefill protocol leaves out the selection modes\n"
                "the GPU lacks (inherit, capped, random) and exact-trajectory (a CPU instrument), with a note")
      ->capture_default_str();
  c->add_option("--dtype", p.dtype, "Compute dtype f32 | fp16 | bf16 (default f32 on cpu, bf16 on cuda)");
  c->add_option("--attention-kernel", p.attention_kernel,
                "With --device cuda: who runs the plain causal attention, auto | cascade | cudnn (as for generate)")
      ->capture_default_str();
  c->add_option("--out", o->out, "Output folder")->required();
  c->add_flag("--overwrite", o->overwrite, "Replace a study with other parameters in --out");
  c->add_flag("--quiet", o->quiet, "No progress on stderr");
  c->callback([o] {
    const std::string model = o->params.model, tokenizer = o->params.tokenizer, out = o->out;
    engine::PreparedStudy study = engine::prepare_study(*o);
    auto m = Model::load(model);
    engine::place_model(*m, engine::study_placement(study.request.params));
    auto tok = model_tokenizer(*m, model, tokenizer);
    const engine::StudyOutcome r = engine::run_prepared_study(*m, *tok, std::move(study), build_commit());
    std::printf("study: %zu windows of %lld tokens (%lld resumed), %zu configurations; wrote", r.run.windows.size(),
                (long long)r.run.params.ctx, (long long)r.run.resumed, r.run.configs.size());
    for (const auto& f : r.files) std::printf(" %s", f.c_str());
    std::printf(" to %s\n", out.c_str());
  });
}

}  // namespace cascade::cli
