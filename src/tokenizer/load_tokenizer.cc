// load_tokenizer: decides the format from what the path is. A directory is searched as a model's
// folder is (find_tokenizer.h); a file is a tokenizer.json by its .json extension and a llama2.c
// tokenizer otherwise.
#include "core/error.h"
#include "tokenizer/find_tokenizer.h"
#include "tokenizer/tokenizer_files.h"

namespace cascade {

std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  if (!fs::exists(path)) fail("tokenizer path ", path.string(), " does not exist");
  if (!fs::is_directory(path))
    return path.extension() == ".json" ? load_tokenizer_json(path) : load_llama2c_tokenizer(path);
  if (const auto files = find_tokenizer(path)) return load_tokenizer_files(*files);
  fail("directory ", path.string(), " has no tokenizer: looked for ", tokenizer_search());
}

}  // namespace cascade
