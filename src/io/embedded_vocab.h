// A vocabulary carried inside a model file (GGUF's tokenizer.ggml.* keys), as plain data: the
// reader copies and checks what the file says; src/tokenizer decides what it means and builds the
// Tokenizer (make_embedded_tokenizer), so the readers never depend on the tokenizers.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cascade {

struct EmbeddedVocab {
  std::string source;              // the file it came from, for messages
  std::string model;               // tokenizer.ggml.model: "gpt2" (byte-level BPE) or "llama" (sentencepiece)
  std::string pre;                 // tokenizer.ggml.pre; "" when absent
  std::vector<std::string> tokens;  // id -> token text
  std::optional<std::vector<float>> scores;  // per token (sentencepiece merge priority)
  std::vector<int64_t> types;      // per token (llama_token_type); empty when absent
  std::optional<std::vector<std::string>> merges;  // "left right", in rank order
  std::optional<int32_t> bos, eos, unk;  // each inside the vocabulary
  std::optional<bool> add_bos, add_space_prefix;
};

}  // namespace cascade
