// cascade perplexity: sliding-window perplexity of a model over a text file (engine/text_perplexity.h;
// convention in src/eval/perplexity.h and the README), with progress on stderr and an optional JSON report. The
// report is rewritten after every window ("complete": false until the last), so that a run stopped
// part way keeps what it measured; each rewrite goes to a temporary file renamed over the report,
// so a kill mid-write never leaves half a file.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>

#include "attention_flags.h"
#include "commands.h"
#include "core/error.h"
#include "core/progress.h"
#include "engine/text_file.h"
#include "engine/text_perplexity.h"
#include "model/model_tokenizer.h"

namespace cascade::cli {

namespace {

std::string temporary(const std::string& report) { return report + ".partial"; }

// Fails now, before the model runs, if the report cannot be written; leaves nothing behind.
void check_writable(const std::string& path) {
  if (!std::ofstream(temporary(path))) fail(path, ": cannot open for writing");
  std::filesystem::remove(temporary(path));
}

void write_report(const std::string& path, const engine::TextPerplexity& run) {
  {
    std::ofstream f(temporary(path));
    f << run.report().dump(1) << "\n";
    if (!f) fail(path, ": write failed");
  }
  std::error_code ec;
  std::filesystem::rename(temporary(path), path, ec);
  if (ec) fail(path, ": cannot write (", ec.message(), ")");
}

}  // namespace

void add_perplexity(CLI::App& app) {
  auto* c = app.add_subcommand(
      "perplexity",
      "Perplexity over a text file. The whole file is tokenized once (with the tokenizer's BOS, if any,\n"
      "at its start). Windows of --ctx tokens start every --stride tokens; each window scores the tokens\n"
      "not scored by an earlier window (the first scores all but its first token) - Hugging Face's\n"
      "documented sliding-window convention. With --stride = --ctx (default) windows do not overlap and\n"
      "each window's first token is not scored.");
  struct Opts {
    engine::AttentionOptions att;
    std::string model, tokenizer, text, json;
    PerplexityOptions p;
    bool quiet = false;
  };
  auto o = std::make_shared<Opts>();
  add_attention_flags(c, o->att);
  c->add_option("--model", o->model, "Model checkpoint (directory, .bin or .gguf)")->required();
  c->add_option("--text", o->text, "UTF-8 text file")->required();
  c->add_option("--tokenizer", o->tokenizer, "Tokenizer file, if not beside the model");
  c->add_option("--ctx", o->p.ctx, "Window length in tokens (default: the model's context)");
  c->add_option("--stride", o->p.stride, "Distance between window starts (default: --ctx)");
  c->add_option("--max-windows", o->p.max_windows, "Stop after this many windows (0: all)")->capture_default_str();
  c->add_option("--json", o->json, "Write the result (and per-window NLL) as JSON to this file, rewritten after every window");
  c->add_flag("--quiet", o->quiet, "No progress on stderr");
  c->callback([o] {
    const auto attention = engine::make_attention(o->att);
    const std::string text = engine::read_text_file(o->text);
    if (!o->json.empty()) check_writable(o->json);
    auto m = Model::load(o->model);
    engine::place_model(*m, o->att);
    auto tok = model_tokenizer(*m, o->model, o->tokenizer);
    std::optional<Progress> bar;
    const auto on_window = [&](const engine::TextPerplexity& so_far, int64_t done, int64_t total) {
      if (!bar) bar.emplace("perplexity", total, !o->quiet);
      bar->update(done);
      if (!o->json.empty()) write_report(o->json, so_far);
    };
    const auto run = engine::text_perplexity(*m, *tok, o->model, o->text, text, o->p, attention.get(), on_window);
    if (bar) bar->finish();
    const PerplexityResult& r = run.result;
    std::printf("perplexity %.6f over %lld scored tokens of %lld (%zu windows)\n", r.ppl, (long long)r.scored,
                (long long)r.tokens, r.windows.size());
    if (!o->json.empty()) write_report(o->json, run);
  });
}

}  // namespace cascade::cli
