// cascade inspect: what the engine read from a checkpoint: format, architecture and every
// hyper-parameter, tensors with dtypes and shapes, parameter count, tokenizer. --json for scripts.
#include <cstdio>
#include <iostream>
#include <map>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "core/error.h"
#include "model/model.h"
#include "model/model_tokenizer.h"

namespace cascade::cli {

void add_inspect(CLI::App& app) {
  auto* c = app.add_subcommand("inspect", "Show a checkpoint's architecture, hyper-parameters and tensors");
  struct Opts {
    std::string model, tokenizer;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  c->add_option("--model", o->model, "Model checkpoint (directory, .bin or .gguf)")->required();
  c->add_option("--tokenizer", o->tokenizer, "Tokenizer file, if not beside the model");
  c->add_flag("--json", o->json, "Print one JSON object instead of tables");
  c->callback([o] {
    auto m = Model::load(o->model);
    nlohmann::json j;
    j["path"] = o->model;
    j["format"] = m->checkpoint().format;
    j["architecture"] = m->spec().describe();
    if (!m->checkpoint().format_metadata.is_null()) j["format_metadata"] = m->checkpoint().format_metadata;
    int64_t params = 0;
    std::map<std::string, int64_t> dtypes;
    auto tensors = nlohmann::json::array();
    for (const auto& t : m->checkpoint().weights->list()) {
      int64_t n = 1;
      for (auto s : t.shape) n *= s;
      params += n;
      dtypes[t.dtype] += 1;
      tensors.push_back({{"name", t.name}, {"dtype", t.dtype}, {"shape", t.shape}});
    }
    j["parameters"] = params;
    j["tensor_dtypes"] = dtypes;
    j["tensors"] = tensors;
    try {
      auto tok = model_tokenizer(*m, o->model, o->tokenizer);
      j["tokenizer"] = {{"kind", tok->kind()}, {"vocab_size", tok->vocab_size()}};
      if (tok->bos_id()) j["tokenizer"]["bos_id"] = *tok->bos_id();
      if (tok->eos_id()) j["tokenizer"]["eos_id"] = *tok->eos_id();
    } catch (const Error& e) {
      j["tokenizer"] = {{"error", e.what()}};
    }
    if (o->json) {
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::printf("%s (%s)\n\narchitecture\n", o->model.c_str(), j["format"].get<std::string>().c_str());
    for (auto& [k, v] : j["architecture"].items()) std::printf("  %-18s %s\n", k.c_str(), v.dump().c_str());
    std::printf("\nparameters %lld in %zu tensors (", (long long)params, tensors.size());
    for (auto& [k, v] : dtypes) std::printf(" %s: %lld", k.c_str(), (long long)v);
    std::printf(" )\ntokenizer  %s\n", j["tokenizer"].dump().c_str());
    if (j.contains("format_metadata")) std::printf("\nformat metadata\n%s\n", j["format_metadata"].dump(2).c_str());
    std::printf("\ntensors\n");
    for (auto& t : tensors)
      std::printf("  %-60s %-6s %s\n", t["name"].get<std::string>().c_str(), t["dtype"].get<std::string>().c_str(),
                  t["shape"].dump().c_str());
  });
}

}  // namespace cascade::cli
