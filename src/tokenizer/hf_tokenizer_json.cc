// Hugging Face tokenizer.json with a BPE model, in the two pipelines the engine implements:
//  - byte-level: ByteLevel pre-tokenizer (GPT-2 regex, no prefix space), alone or after
//    Digits(individual_digits=true) as SmolLM2 and StarCoder have it; ByteLevel decoder;
//  - sentencepiece-style: byte_fallback, spaces as "▁" through the normalizers Prepend("▁") +
//    Replace(" ", "▁") or a Metaspace pre-tokenizer.
// Any other component is refused by name rather than approximated, so a tokenizer that loads
// encodes as Hugging Face does. The one exception is GPT-NeoX's NFC normalizer, taken as the
// identity: NFC text (virtually all text) is unchanged by it, and the engine has no NFC tables.
// Special tokens, bos/eos and add_bos come from tokenizer_config.json beside the file when present,
// else from the post-processor's template and the added tokens.
#include <unordered_map>

#include "core/error.h"
#include "io/json_file.h"
#include "tokenizer/bpe_merge.h"
#include "tokenizer/tokenizer_files.h"

namespace cascade {
namespace {

using nlohmann::json;

struct Common {
  std::vector<std::string> tokens;
  std::vector<std::pair<std::string, std::string>> merges;
  std::vector<int32_t> special_ids, added_ids;
  std::unordered_map<std::string, int32_t> id_of;
  std::optional<int32_t> bos, eos;
  std::optional<bool> add_bos;  // unset: the tokenizer kind's default
};

std::string type_of(const json& j) { return j.is_object() ? j.value("type", "") : ""; }

// The components of a Sequence, or the component itself; nothing for null.
std::vector<json> parts(const json& j, const char* list_key) {
  if (j.is_null()) return {};
  if (type_of(j) == "Sequence") return j.at(list_key).get<std::vector<json>>();
  return {j};
}

std::vector<std::pair<std::string, std::string>> read_merges(const json& merges) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& m : merges) {
    if (m.is_array() && m.size() == 2) {  // newer files: ["a", "b"]
      out.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
      continue;
    }
    const auto s = m.get<std::string>();  // older files: "a b"
    const size_t space = s.find(' ');
    if (space == std::string::npos) fail("merge \"", s, "\" is not two tokens");
    out.emplace_back(s.substr(0, space), s.substr(space + 1));
  }
  return out;
}

// The model's vocabulary, the added tokens and the special-token choices shared by both kinds.
Common read_common(const json& j, const std::filesystem::path& dir, const char* default_bos,
                   const char* default_eos) {
  Common c;
  const json& model = j.at("model");
  for (const auto& [token, id] : model.at("vocab").items()) {
    const auto i = id.get<int32_t>();
    if (i < 0 || i >= (1 << 30)) fail("token \"", token, "\" has id ", i);
    if (i >= static_cast<int32_t>(c.tokens.size())) c.tokens.resize(i + 1);
    c.tokens[i] = token;
    c.id_of[token] = i;
  }
  c.merges = read_merges(model.at("merges"));
  if (c.merges.empty()) fail("model.merges is empty");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix", "dropout"})
    if (model.contains(key) && !model[key].is_null()) fail("model.", key, " is not supported");
  if (model.value("ignore_merges", false)) fail("model.ignore_merges is not supported");

  if (j.contains("added_tokens"))
    for (const auto& t : j["added_tokens"]) {
      const auto id = t.at("id").get<int32_t>();
      const auto content = t.at("content").get<std::string>();
      if (id < 0 || id >= (1 << 30)) fail("added token \"", content, "\" has id ", id);
      if (id >= static_cast<int32_t>(c.tokens.size())) c.tokens.resize(id + 1);
      c.tokens[id] = content;
      c.id_of[content] = id;
      (t.value("special", false) ? c.special_ids : c.added_ids).push_back(id);
    }
  auto id_for = [&](const std::string& text) -> std::optional<int32_t> {
    auto it = c.id_of.find(text);
    return it == c.id_of.end() ? std::nullopt : std::optional<int32_t>(it->second);
  };

  // A TemplateProcessing post-processor (possibly inside a Sequence) lists what add_special puts
  // before the text. Tokens it puts after (an appended EOS) are left out: a generation prompt must
  // not end in EOS.
  const json post = j.value("post_processor", json());
  for (const auto& p : parts(post, "processors")) {
    if (type_of(p) != "TemplateProcessing") continue;
    const auto& single = p.at("single");
    c.add_bos = !single.empty() && single[0].contains("SpecialToken");
    if (*c.add_bos) c.bos = id_for(single[0]["SpecialToken"].at("id").get<std::string>());
  }

  const auto cfg = read_hf_config(dir);
  if (cfg.add_bos) c.add_bos = cfg.add_bos;
  if (cfg.bos) c.bos = id_for(*cfg.bos);
  if (!c.bos) c.bos = id_for(default_bos);
  c.eos = id_for(cfg.eos.value_or(default_eos));
  if (c.add_bos.value_or(false) && !c.bos) fail("add_special prepends a bos token that is not in the vocabulary");
  return c;
}

// Whether the pre-tokenizer is a ByteLevel one: ByteLevel, or a Sequence ending in ByteLevel.
bool is_byte_level(const json& pre) {
  const auto p = parts(pre, "pretokenizers");
  return !p.empty() && type_of(p.back()) == "ByteLevel";
}

std::unique_ptr<Tokenizer> byte_level(const json& j, Common c) {
  for (const auto& n : parts(j.value("normalizer", json()), "normalizers"))
    if (type_of(n) != "NFC") fail("normalizer ", type_of(n), " is not supported with a ByteLevel pre-tokenizer");
  ByteBpeVocab v;
  const auto pres = parts(j.at("pre_tokenizer"), "pretokenizers");
  const json& pre = pres.back();
  if (pre.value("add_prefix_space", false)) fail("ByteLevel add_prefix_space=true is not supported");
  if (!pre.value("use_regex", true)) fail("ByteLevel use_regex=false is not supported");
  for (size_t i = 0; i + 1 < pres.size(); ++i) {
    if (type_of(pres[i]) != "Digits" || !pres[i].value("individual_digits", false) || v.individual_digits)
      fail("pre_tokenizer ", pres[i].dump(), " before ByteLevel is not supported (only Digits with individual_digits)");
    v.individual_digits = true;
  }
  // Hugging Face's BPE turns a byte with no token into unk_token, if the vocabulary has it.
  const json& model = j.at("model");
  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    if (model.value("fuse_unk", false)) fail("model.fuse_unk=true is not supported with a ByteLevel pre-tokenizer");
    if (auto it = c.id_of.find(model["unk_token"].get<std::string>()); it != c.id_of.end()) v.unk = it->second;
  }
  v.tokens = std::move(c.tokens);
  v.merges = std::move(c.merges);
  v.special_ids = std::move(c.special_ids);
  v.added_ids = std::move(c.added_ids);
  v.bos = c.bos;
  v.eos = c.eos;
  v.add_bos = c.add_bos.value_or(false);
  return make_byte_bpe(std::move(v));
}

std::unique_ptr<Tokenizer> sentencepiece(const json& j, Common c) {
  SentencePieceVocab v;
  v.add_dummy_prefix = false;
  bool spaces_replaced = false;
  for (const auto& n : parts(j.value("normalizer", json()), "normalizers")) {
    const auto type = type_of(n);
    if (type == "Prepend" && n.at("prepend") == kSpaceMark) {
      v.add_dummy_prefix = true;
    } else if (type == "Replace" && n.at("pattern").value("String", "") == " " && n.at("content") == kSpaceMark) {
      spaces_replaced = true;
    } else {
      fail("normalizer ", n.dump(), " is not supported");
    }
  }
  const json pre = j.value("pre_tokenizer", json());
  if (!pre.is_null()) {
    if (type_of(pre) != "Metaspace" || pre.value("replacement", "") != kSpaceMark)
      fail("pre_tokenizer ", pre.dump(), " is not supported");
    // Metaspace without "split" (older files) splits words at every "▁"; that is not modelled.
    if (pre.value("split", true)) fail("Metaspace with split=true is not supported");
    const std::string scheme =
        pre.value("prepend_scheme", pre.value("add_prefix_space", true) ? "always" : "never");
    if (scheme != "always" && scheme != "first" && scheme != "never")
      fail("Metaspace prepend_scheme \"", scheme, "\" is not supported");
    spaces_replaced = true;
    v.add_dummy_prefix = scheme != "never";
    v.prefix_unless_space = true;
    v.prefix_only_first_segment = scheme == "first";
  }
  if (!spaces_replaced) fail("spaces are not replaced by \"▁\" (no Replace normalizer or Metaspace)");
  v.pieces = std::move(c.tokens);
  v.merges = std::move(c.merges);
  v.special_ids = std::move(c.special_ids);
  v.added_ids = std::move(c.added_ids);
  v.bos = c.bos;
  v.eos = c.eos;
  if (j["model"].contains("unk_token") && j["model"]["unk_token"].is_string()) {
    auto it = c.id_of.find(j["model"]["unk_token"].get<std::string>());
    if (it != c.id_of.end()) v.unk = it->second;
  }
  // Llama's transformers tokenizer prepends BOS unless its config says otherwise.
  v.add_bos = c.add_bos.value_or(true);
  return make_sentencepiece_bpe(std::move(v));
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer_json(const std::filesystem::path& file) {
  const auto j = read_json_file(file);
  try {
    if (!j.contains("model"))
      fail("not a tokenizer.json (no \"model\"); for vocab.json + merges.txt pass their directory");
    const auto model_type = j["model"].value("type", "BPE");
    if (model_type != "BPE") fail("model type ", model_type, " is not supported (only BPE)");
    const json pre = j.value("pre_tokenizer", json());
    if (is_byte_level(pre))
      return byte_level(j, read_common(j, file.parent_path(), "<|endoftext|>", "<|endoftext|>"));
    if (!j["model"].value("byte_fallback", false))
      fail("neither a ByteLevel pre-tokenizer nor byte_fallback: not a supported BPE pipeline");
    return sentencepiece(j, read_common(j, file.parent_path(), "<s>", "</s>"));
  } catch (const nlohmann::json::exception& e) {
    fail(file.string(), ": ", e.what());
  } catch (const Error& e) {
    fail(file.string(), ": ", e.what());
  }
}

}  // namespace cascade
