#include "model/model_tokenizer.h"

#include "core/error.h"

namespace cascade {

std::shared_ptr<Tokenizer> model_tokenizer(const Model& m, const std::filesystem::path& model_path,
                                           const std::filesystem::path& explicit_path) {
  std::shared_ptr<Tokenizer> t;
  if (!explicit_path.empty()) t = load_tokenizer(explicit_path);
  else if (m.checkpoint().embedded_tokenizer) t = m.checkpoint().embedded_tokenizer;
  else if (!m.checkpoint().tokenizer_path.empty()) t = load_tokenizer(m.checkpoint().tokenizer_path);
  else
    fail(model_path.string(), ": no tokenizer found beside the model (looked for tokenizer.json, vocab.json + merges.txt",
         ", tokenizer.bin); name one with --tokenizer FILE");
  if (t->vocab_size() > m.spec().vocab_size)
    fail("the tokenizer has ", t->vocab_size(), " tokens but the model's vocabulary has ", m.spec().vocab_size);
  return t;
}

}  // namespace cascade
