// Tokenizer: text <-> token ids. Two algorithms cover every supported checkpoint:
//  - byte-level BPE (GPT-2, GPT-J, OPT, GPT-NeoX): bytes mapped to printable unicode, GPT-2 regex
//    pre-tokenisation, merges by rank;
//  - sentencepiece-style BPE with byte fallback (Llama, llama2.c tokenizer.bin, GGUF "llama").
// Both are built from files (load_tokenizer) or from in-memory vocabularies (the GGUF reader).
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cascade {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Ids of text. Special tokens written literally in the text (e.g. "<|endoftext|>", "</s>") map
  // to their ids. add_special prepends the tokenizer's own prefix (BOS for Llama, "</s>" for OPT,
  // nothing for GPT-2), as Hugging Face does with add_special_tokens=True.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special) const = 0;
  // Text of ids; special tokens (BOS/EOS/pad) are skipped. Bytes of a partial UTF-8 character are
  // kept as they are (the caller streams with StreamDecoder to avoid printing half characters).
  virtual std::string decode(std::span<const int32_t> ids) const = 0;
  // Raw bytes of one token as it contributes to decoded text (empty for special tokens).
  virtual std::string token_bytes(int32_t id, bool first_in_sequence) const = 0;
  // Whether id is a special token (skipped on decode; "first in sequence" is the first id that is
  // not special). Throws cascade::Error for an id outside the vocabulary.
  virtual bool is_special(int32_t id) const = 0;
  virtual int32_t vocab_size() const = 0;
  virtual std::optional<int32_t> bos_id() const = 0;
  virtual std::optional<int32_t> eos_id() const = 0;
  virtual std::string kind() const = 0;  // "byte-bpe" or "sentencepiece-bpe", for inspect
};

// Streams generated ids as text: returns only complete UTF-8 characters, holding back the bytes of
// a character split across tokens until it is complete.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok) : tok_(tok) {}
  std::string push(int32_t id);
  std::string flush();  // whatever is held back (invalid UTF-8 is emitted as is)

 private:
  const Tokenizer& tok_;
  std::string pending_;
  bool first_ = true;
};

// Loads a tokenizer from a path:
//  - a directory: tokenizer.json, else vocab.json + merges.txt; tokenizer_config.json and
//    special_tokens_map.json beside them give BOS/EOS and add_bos_token;
//  - a file: tokenizer.json, or a llama2.c tokenizer .bin.
// Throws cascade::Error naming the file when nothing usable is found or a file is malformed.
std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& path);

// In-memory construction (used by the GGUF reader).
struct ByteBpeVocab {
  std::vector<std::string> tokens;  // id -> token string in GPT-2's byte-to-unicode form
  std::vector<std::pair<std::string, std::string>> merges;  // in rank order
  std::vector<int32_t> special_ids;  // ids matched literally in text and skipped on decode
  std::vector<int32_t> added_ids;    // non-special added tokens: matched literally, decoded as text
  std::optional<int32_t> bos, eos;
  bool add_bos = false;  // prepend bos on encode(add_special=true)
  // Split off every \p{N} character before the GPT-2 regex: Hugging Face's
  // Sequence[Digits(individual_digits=true), ByteLevel], GGUF tokenizer.ggml.pre "smollm".
  bool individual_digits = false;
  // A vocabulary may lack tokens for some bytes (SmolLM2 has none for 21 of them, control bytes
  // and bytes that never occur in UTF-8). Such a byte becomes unk when set, one unk per byte, as
  // in Hugging Face's BPE with an unk_token and fuse_unk false; otherwise it is dropped, as
  // Hugging Face's BPE without unk_token and llama.cpp do.
  std::optional<int32_t> unk;
};
std::unique_ptr<Tokenizer> make_byte_bpe(ByteBpeVocab vocab);

struct SentencePieceVocab {
  std::vector<std::string> pieces;  // id -> piece with U+2581 for space; byte tokens as "<0xAB>"
  std::vector<float> scores;        // merge priority: higher merges first
  std::vector<int32_t> special_ids; // control tokens: matched literally in text, skipped on decode
  std::vector<int32_t> added_ids;   // non-special added tokens: matched literally, decoded as text
  std::optional<int32_t> bos, eos, unk;
  bool add_bos = true;
  bool add_dummy_prefix = true;     // sentencepiece's leading "▁"
  // Where the dummy prefix goes when added tokens cut the text into segments. Sentencepiece,
  // llama2.c and Hugging Face's Prepend normalizer prefix every segment; a Metaspace pre-tokenizer
  // skips segments already starting with a space and, with prepend_scheme "first", all but the one
  // at the start of the text.
  bool prefix_only_first_segment = false;
  bool prefix_unless_space = false;
  // When given (Hugging Face tokenizer.json), pairs merge by rank in this list, as Hugging Face
  // does; otherwise by the merged piece's score, as llama2.c and sentencepiece do.
  std::vector<std::pair<std::string, std::string>> merges;
};
std::unique_ptr<Tokenizer> make_sentencepiece_bpe(SentencePieceVocab vocab);

}  // namespace cascade
