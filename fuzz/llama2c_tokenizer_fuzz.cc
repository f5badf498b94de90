// Fuzzes the llama2.c tokenizer.bin reader (max_token_length, then score, length and bytes per
// token to the end of the file) and the tokenizer it builds: encoding a fixed text must give ids
// inside the vocabulary, and they must decode. Seeds: tok512.bin and the head of Llama 2's.
#include "core/error.h"
#include "fuzz_support.h"
#include "tokenizer/tokenizer_files.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto tok = cascade::load_llama2c_tokenizer(cascade::fuzz::memory_file(data, size));
    const auto ids = tok->encode("Once upon a time, \xE4\xB8\x96 </s>", true);
    for (int32_t id : ids) cascade::fuzz::require(id >= 0 && id < tok->vocab_size());
    (void)tok->decode(ids);
  } catch (const cascade::Error& e) {
    cascade::fuzz::printable(e);
  }
  return 0;
}
