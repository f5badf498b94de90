#include "tokenizer/find_tokenizer.h"

#include <vector>

#include "tokenizer/tokenizer_files.h"

namespace cascade {

namespace fs = std::filesystem;

namespace {

struct Candidate {
  std::string file, merges;  // merges empty: a single file
};

std::vector<Candidate> candidates(std::optional<int64_t> vocab) {
  std::vector<Candidate> c = {{"tokenizer.json", ""},
                              {"vocab.json", "merges.txt"},
                              {"encoder.json", "vocab.bpe"},
                              {"tokenizer.bin", ""}};
  if (vocab) c.push_back({"tok" + std::to_string(*vocab) + ".bin", ""});
  return c;
}

}  // namespace

std::optional<TokenizerFiles> find_tokenizer(const fs::path& dir, std::optional<int64_t> vocab) {
  for (const Candidate& c : candidates(vocab)) {
    if (!fs::is_regular_file(dir / c.file)) continue;
    if (c.merges.empty()) return TokenizerFiles{dir / c.file, {}};
    if (fs::is_regular_file(dir / c.merges)) return TokenizerFiles{dir / c.file, dir / c.merges};
  }
  return std::nullopt;
}

std::string tokenizer_search(std::optional<int64_t> vocab) {
  std::string s;
  for (const Candidate& c : candidates(vocab)) {
    if (!s.empty()) s += ", ";
    s += c.merges.empty() ? c.file : c.file + " + " + c.merges;
  }
  return s;
}

std::unique_ptr<Tokenizer> load_tokenizer_files(const TokenizerFiles& files) {
  if (!files.merges.empty()) return load_vocab_merges(files.file, files.merges);
  if (files.file.extension() == ".json") return load_tokenizer_json(files.file);
  return load_llama2c_tokenizer(files.file);
}

}  // namespace cascade
