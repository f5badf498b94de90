#include "tokenizer/embedded_tokenizer.h"

#include "core/error.h"

namespace cascade {

namespace {

// Token types of tokenizer.ggml.token_type (llama_token_type). Control tokens (BOS, <|im_end|>)
// are special: matched literally and skipped on decode. User-defined tokens are added tokens that
// are matched literally but decode as text.
constexpr int64_t kControlToken = 3;
constexpr int64_t kUserDefinedToken = 4;

std::vector<int32_t> ids_of_type(const EmbeddedVocab& v, int64_t type) {
  std::vector<int32_t> ids;
  for (size_t i = 0; i < v.types.size(); ++i)
    if (v.types[i] == type) ids.push_back(int32_t(i));
  return ids;
}

// Whether tokenizer.ggml.pre asks for single digits split off before the GPT-2 regex. llama.cpp
// names the pre-tokenizer of each known vocabulary; the ones read here are those whose Hugging Face
// tokenizer.json is ByteLevel, alone or after Digits(individual_digits=true). Any other name means
// another regex, which is refused rather than approximated by GPT-2's. "default" (and no key) is
// read as GPT-2, as Hugging Face's GGUF reader does.
bool individual_digits(const EmbeddedVocab& v) {
  const std::string pre = v.pre.empty() ? "default" : v.pre;
  if (pre == "default" || pre == "gpt-2") return false;
  if (pre == "smollm" || pre == "starcoder") return true;
  fail(v.source, ": unsupported GGUF pre-tokenizer tokenizer.ggml.pre = '", pre,
       "' (Cascade reads 'default' and 'gpt-2': the GPT-2 regex; 'smollm' and 'starcoder': single digits, then "
       "the GPT-2 regex)");
}

std::unique_ptr<Tokenizer> byte_bpe(const EmbeddedVocab& e) {
  ByteBpeVocab v;
  v.tokens = e.tokens;
  v.special_ids = ids_of_type(e, kControlToken);
  v.added_ids = ids_of_type(e, kUserDefinedToken);
  v.bos = e.bos;
  v.eos = e.eos;
  v.add_bos = e.add_bos.value_or(false);
  v.individual_digits = individual_digits(e);
  // v.unk stays unset even where tokenizer.ggml.unknown_token_id is given: llama.cpp and Hugging
  // Face's GGUF reader both drop a byte the vocabulary has no token for.
  if (!e.merges) fail(e.source, ": GGUF metadata key 'tokenizer.ggml.merges' is missing");
  const std::vector<std::string>& merges = *e.merges;
  v.merges.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const auto sp = merges[i].find(' ');
    if (sp == std::string::npos)
      fail(e.source, ": tokenizer.ggml.merges[", i, "] '", merges[i], "' is not two tokens separated by a space");
    v.merges.emplace_back(merges[i].substr(0, sp), merges[i].substr(sp + 1));
  }
  return make_byte_bpe(std::move(v));
}

std::unique_ptr<Tokenizer> sentencepiece(const EmbeddedVocab& e) {
  SentencePieceVocab v;
  if (!e.scores) fail(e.source, ": GGUF metadata key 'tokenizer.ggml.scores' is missing");
  v.scores = *e.scores;
  v.pieces = e.tokens;
  v.special_ids = ids_of_type(e, kControlToken);
  v.added_ids = ids_of_type(e, kUserDefinedToken);
  v.bos = e.bos;
  v.eos = e.eos;
  v.unk = e.unk;
  v.add_bos = e.add_bos.value_or(true);
  v.add_dummy_prefix = e.add_space_prefix.value_or(true);
  return make_sentencepiece_bpe(std::move(v));
}

}  // namespace

std::unique_ptr<Tokenizer> make_embedded_tokenizer(const EmbeddedVocab& v) {
  if (v.model == "gpt2") return byte_bpe(v);
  if (v.model == "llama") return sentencepiece(v);
  fail(v.source, ": unsupported GGUF tokenizer model '", v.model, "' (Cascade reads 'gpt2' and 'llama')");
}

}  // namespace cascade
