// Fuzzes the GGUF reader: the header, typed metadata (strings, nested counts, arrays), tensor infos
// and offsets, then the whole llama path a user's file takes: the metadata as `cascade inspect`
// shows it (which, like every message, must be valid UTF-8 to print as JSON), the config and
// embedded tokenizer rebuilt from it, dequantization of every tensor, the model built from them and
// one forward pass. Seeds: the tiny GGUF fixtures in tests/data/gguf.
#include <array>

#include "core/error.h"
#include "fuzz_support.h"
#include "io/gguf.h"
#include "model/model.h"
#include "tokenizer/embedded_tokenizer.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) { return cascade::fuzz::single_threaded(); }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = cascade::fuzz::memory_file(data, size);
  try {
    const auto f = cascade::GgufFile::open(path);
    cascade::fuzz::printable(f->metadata_json(16));
    for (const auto& t : f->tensors()) {
      cascade::fuzz::require(t.nbytes <= size);
      cascade::fuzz::printable(t.name);
    }
    cascade::Checkpoint ck = cascade::open_gguf_checkpoint(path);
    cascade::fuzz::printable(ck.format_metadata);
    cascade::fuzz::printable(ck.config);
    for (const auto& meta : ck.weights->list()) (void)ck.weights->load_f32(meta.name);
    if (ck.embedded_vocab) {
      const auto built = cascade::make_embedded_tokenizer(*ck.embedded_vocab);
      const auto& tok = *built;
      const auto ids = tok.encode("Hello world <s>", true);
      for (int32_t id : ids) cascade::fuzz::require(id >= 0 && id < tok.vocab_size());
      (void)tok.decode(ids);
    }
    const cascade::Model m(std::move(ck), path);
    cascade::fuzz::printable(m.spec().describe());
    cascade::Sequence s = m.new_sequence();
    const std::array<int32_t, 2> ids = {0, int32_t(m.spec().vocab_size - 1)};
    (void)m.forward(s, ids);
  } catch (const cascade::Error& e) {
    cascade::fuzz::printable(e);
  }
  return 0;
}
