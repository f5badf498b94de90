// Fuzzes the llama2.c checkpoint reader (the 7 x int32 header against the file size, with its
// overflow-checked arithmetic), then the model built from it and one forward pass. Seeds: tiny
// synthetic checkpoints with a shared and an unshared classifier (fuzz/make_corpus.py).
#include <array>

#include "core/error.h"
#include "fuzz_support.h"
#include "io/llama2c.h"
#include "model/model.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) { return cascade::fuzz::single_threaded(); }

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = cascade::fuzz::memory_file(data, size);
  try {
    cascade::Checkpoint ck = cascade::open_llama2c(path);
    for (const auto& meta : ck.weights->list()) cascade::fuzz::require(meta.nbytes <= size);
    const cascade::Model m(std::move(ck), path);
    cascade::Sequence s = m.new_sequence();
    const std::array<int32_t, 2> ids = {0, int32_t(m.spec().vocab_size - 1)};
    (void)m.forward(s, ids);
  } catch (const cascade::Error& e) {
    cascade::fuzz::printable(e);
  }
  return 0;
}
