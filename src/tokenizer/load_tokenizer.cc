// load_tokenizer: decides the format from what the path is. A directory is searched in the order
// Hugging Face itself prefers (tokenizer.json over the slow-tokenizer files), then OpenAI's
// original GPT-2 file names, then llama2.c's; a file is a tokenizer.json by its .json extension and
// a llama2.c tokenizer otherwise.
#include "core/error.h"
#include "tokenizer/tokenizer_files.h"

namespace cascade {

std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  if (!fs::exists(path)) fail("tokenizer path ", path.string(), " does not exist");
  if (!fs::is_directory(path))
    return path.extension() == ".json" ? load_tokenizer_json(path) : load_llama2c_tokenizer(path);
  if (fs::exists(path / "tokenizer.json")) return load_tokenizer_json(path / "tokenizer.json");
  for (const auto& [vocab, merges] : {std::pair{"vocab.json", "merges.txt"}, std::pair{"encoder.json", "vocab.bpe"}})
    if (fs::exists(path / vocab) && fs::exists(path / merges)) return load_vocab_merges(path / vocab, path / merges);
  if (fs::exists(path / "tokenizer.bin")) return load_llama2c_tokenizer(path / "tokenizer.bin");
  fail("directory ", path.string(),
       " has no tokenizer: expected tokenizer.json, vocab.json + merges.txt, encoder.json + vocab.bpe or tokenizer.bin");
}

}  // namespace cascade
