// Where a model's tokenizer sits beside it. Every checkpoint format searches its folder with this one
// ordered list of file names, so a tokenizer that loads from `--tokenizer DIR` also loads beside a
// model, and the error names exactly the files that were looked for.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "tokenizer/tokenizer.h"

namespace cascade {

// The files of one tokenizer: a single file, or a vocabulary and its merges.
struct TokenizerFiles {
  std::filesystem::path file;    // tokenizer.json, vocab.json / encoder.json, tokenizer.bin or tok<V>.bin
  std::filesystem::path merges;  // merges.txt / vocab.bpe beside a vocabulary; empty otherwise
};

// The first tokenizer in dir, in the order Hugging Face prefers (tokenizer.json over the
// slow-tokenizer files), then OpenAI's original GPT-2 names, then llama2.c's tokenizer.bin and
// tok<vocab>.bin (only looked for when the model's vocabulary size is known).
std::optional<TokenizerFiles> find_tokenizer(const std::filesystem::path& dir, std::optional<int64_t> vocab = {});

// The names find_tokenizer looks for, for an error: "tokenizer.json, vocab.json + merges.txt, ...".
std::string tokenizer_search(std::optional<int64_t> vocab = {});

std::unique_ptr<Tokenizer> load_tokenizer_files(const TokenizerFiles& files);

}  // namespace cascade
