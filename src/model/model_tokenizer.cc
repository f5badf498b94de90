#include "model/model_tokenizer.h"

#include "core/error.h"
#include "tokenizer/embedded_tokenizer.h"
#include "tokenizer/find_tokenizer.h"

namespace cascade {

std::shared_ptr<Tokenizer> model_tokenizer(const Model& m, const std::filesystem::path& model_path,
                                           const std::filesystem::path& explicit_path) {
  const Checkpoint& ck = m.checkpoint();
  const int64_t vocab = m.spec().vocab_size;
  std::shared_ptr<Tokenizer> t;
  if (!explicit_path.empty()) t = load_tokenizer(explicit_path);
  else if (ck.embedded_vocab) t = make_embedded_tokenizer(*ck.embedded_vocab);
  else if (const auto files = find_tokenizer(ck.tokenizer_dir, vocab)) t = load_tokenizer_files(*files);
  else
    fail(model_path.string(), ": no tokenizer found beside the model (looked in ", ck.tokenizer_dir.string(), " for ",
         tokenizer_search(vocab), "); name one with --tokenizer FILE");
  if (t->vocab_size() > vocab)
    fail("the tokenizer has ", t->vocab_size(), " tokens but the model's vocabulary has ", vocab);
  return t;
}

}  // namespace cascade
