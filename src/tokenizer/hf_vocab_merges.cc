// GPT-2-style vocab.json + merges.txt, read as transformers' GPT2Tokenizer reads them: bos, eos and
// unk default to "<|endoftext|>" unless tokenizer_config.json / special_tokens_map.json name others
// (OPT names "</s>" and sets add_bos_token); the named tokens and the special entries of
// added_tokens_decoder are the special tokens.
#include <fstream>
#include <unordered_map>

#include "core/error.h"
#include "io/json_file.h"
#include "tokenizer/tokenizer_files.h"

namespace cascade {
namespace {

std::vector<std::pair<std::string, std::string>> read_merges(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) fail("cannot open ", file.string());
  std::vector<std::pair<std::string, std::string>> merges;
  std::string line;
  for (int line_no = 1; std::getline(in, line); ++line_no) {
    if (line.ends_with('\r')) line.pop_back();
    if (line.empty() || (line_no == 1 && line.starts_with("#version"))) continue;
    const size_t space = line.find(' ');
    if (space == std::string::npos || space == 0 || line.find(' ', space + 1) != std::string::npos ||
        space + 1 == line.size())
      fail(file.string(), " line ", line_no, ": expected two tokens separated by one space");
    merges.emplace_back(line.substr(0, space), line.substr(space + 1));
  }
  return merges;
}

}  // namespace

std::unique_ptr<Tokenizer> load_vocab_merges(const std::filesystem::path& vocab_file,
                                             const std::filesystem::path& merges_file) {
  const auto j = read_json_file(vocab_file);
  if (j.empty()) fail(vocab_file.string(), ": expected an object of token -> id");
  ByteBpeVocab v;
  std::unordered_map<std::string, int32_t> id_of;
  for (const auto& [token, id] : j.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= (1 << 30))
      fail(vocab_file.string(), ": token \"", token, "\" has no valid id");
    const auto i = id.get<int32_t>();
    if (i >= static_cast<int32_t>(v.tokens.size())) v.tokens.resize(i + 1);
    v.tokens[i] = token;
    id_of[token] = i;
  }
  v.merges = read_merges(merges_file);

  const auto cfg = read_hf_config(vocab_file.parent_path());
  for (const auto& a : cfg.added_tokens_decoder) {
    if (a.id < 0) fail(vocab_file.parent_path().string(), ": added token id ", a.id, " is negative");
    if (a.id >= static_cast<int32_t>(v.tokens.size())) v.tokens.resize(a.id + 1);
    v.tokens[a.id] = a.content;
    id_of[a.content] = a.id;
    (a.special ? v.special_ids : v.added_ids).push_back(a.id);
  }
  auto id_for = [&](const std::optional<std::string>& text) -> std::optional<int32_t> {
    if (!text) return std::nullopt;
    auto it = id_of.find(*text);
    return it == id_of.end() ? std::nullopt : std::optional<int32_t>(it->second);
  };
  const std::string endoftext = "<|endoftext|>";
  v.bos = id_for(cfg.bos.value_or(endoftext));
  v.eos = id_for(cfg.eos.value_or(endoftext));
  std::vector<std::optional<std::string>> named = {cfg.bos.value_or(endoftext), cfg.eos.value_or(endoftext),
                                                   cfg.unk.value_or(endoftext), cfg.pad};
  named.insert(named.end(), cfg.additional_special.begin(), cfg.additional_special.end());
  for (const auto& text : named)
    if (auto id = id_for(text)) v.special_ids.push_back(*id);
  v.add_bos = cfg.add_bos.value_or(false);
  if (v.add_bos && !v.bos) fail(vocab_file.parent_path().string(), ": add_bos_token is set but the bos token is not in the vocabulary");
  try {
    return make_byte_bpe(std::move(v));
  } catch (const Error& e) {
    fail(vocab_file.string(), " + ", merges_file.string(), ": ", e.what());
  }
}

}  // namespace cascade
