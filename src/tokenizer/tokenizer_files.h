// The file formats load_tokenizer reads, one reader per format, and what they share: the Hugging
// Face config files that sit beside a tokenizer.
#pragma once
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace cascade {

// What tokenizer_config.json and special_tokens_map.json in a directory say (the first wins where
// both do); absent files say nothing.
struct HfTokenizerConfig {
  std::optional<std::string> bos, eos, unk, pad;  // token texts
  std::vector<std::string> additional_special;
  std::optional<bool> add_bos;
  struct Added {
    int32_t id;
    std::string content;
    bool special;
  };
  std::vector<Added> added_tokens_decoder;
};
HfTokenizerConfig read_hf_config(const std::filesystem::path& dir);

// Hugging Face tokenizer.json (model BPE: byte-level, or sentencepiece-style with byte fallback).
std::unique_ptr<Tokenizer> load_tokenizer_json(const std::filesystem::path& file);
// GPT-2-style vocab.json + merges.txt (or OpenAI's encoder.json + vocab.bpe), configs beside them.
std::unique_ptr<Tokenizer> load_vocab_merges(const std::filesystem::path& vocab,
                                             const std::filesystem::path& merges);
// llama2.c tokenizer.bin.
std::unique_ptr<Tokenizer> load_llama2c_tokenizer(const std::filesystem::path& file);

}  // namespace cascade
