// The Hugging Face side files of a tokenizer. Token entries there are either a string or an
// AddedToken object {"content": ...}; tokenizer_config.json is read first because transformers lets
// it override special_tokens_map.json.
#include "core/error.h"
#include "io/json_file.h"
#include "tokenizer/tokenizer_files.h"

namespace cascade {
namespace {

std::optional<std::string> token_text(const nlohmann::json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("content") && j["content"].is_string())
    return j["content"].get<std::string>();
  return std::nullopt;
}

void read_config_file(const std::filesystem::path& file, HfTokenizerConfig& cfg) {
  if (!std::filesystem::exists(file)) return;
  const auto j = read_json_file(file);
  auto take = [&](const char* key, std::optional<std::string>& slot) {
    if (!slot && j.contains(key)) slot = token_text(j[key]);
  };
  take("bos_token", cfg.bos);
  take("eos_token", cfg.eos);
  take("unk_token", cfg.unk);
  take("pad_token", cfg.pad);
  if (auto it = j.find("additional_special_tokens"); it != j.end() && it->is_array())
    for (const auto& t : *it)
      if (auto s = token_text(t)) cfg.additional_special.push_back(*s);
  if (auto it = j.find("add_bos_token"); it != j.end() && it->is_boolean() && !cfg.add_bos)
    cfg.add_bos = it->get<bool>();
  if (auto it = j.find("added_tokens_decoder"); it != j.end() && it->is_object()) {
    for (const auto& [id, t] : it->items()) {
      auto content = token_text(t);
      if (!content) fail(file.string(), ": added_tokens_decoder entry ", id, " has no content");
      int32_t num = 0;
      try {
        num = std::stoi(id);
      } catch (const std::exception&) {
        fail(file.string(), ": added_tokens_decoder key \"", id, "\" is not a token id");
      }
      cfg.added_tokens_decoder.push_back({num, *content, t.is_object() && t.value("special", false)});
    }
  }
}

}  // namespace

HfTokenizerConfig read_hf_config(const std::filesystem::path& dir) {
  HfTokenizerConfig cfg;
  try {
    read_config_file(dir / "tokenizer_config.json", cfg);
    read_config_file(dir / "special_tokens_map.json", cfg);
  } catch (const nlohmann::json::exception& e) {
    fail("tokenizer config in ", dir.string(), ": ", e.what());
  }
  return cfg;
}

}  // namespace cascade
