// Fuzzes sentencepiece-style BPE with byte fallback on arbitrary bytes, in both merge orders: by
// rank (the Llama fixture's tokenizer.json) and by score (llama2.c's tok512.bin, bundled with
// stories260K). Checks: no crash, no error (byte fallback covers every byte), the shared checks of
// tokenizer_check.h.
#include <memory>

#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer_check.h"

namespace {

const cascade::Tokenizer& by_rank() {
  static const std::unique_ptr<cascade::Tokenizer> tok =
      cascade::load_tokenizer(std::string(CASCADE_TEST_DATA) + "/models/llama/tokenizer.json");
  return *tok;
}

const cascade::Tokenizer& by_score() {
  static const std::unique_ptr<cascade::Tokenizer> tok =
      cascade::load_tokenizer(std::string(CASCADE_MODELS_DIR) + "/stories260K/tok512.bin");
  return *tok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = cascade::fuzz::as_text(data, size);
  try {
    cascade::fuzz::checked_encode(by_rank(), text);
    cascade::fuzz::checked_encode(by_score(), text);
  } catch (const cascade::Error& e) {
    cascade::fuzz::printable(e);
    cascade::fuzz::require(false);
  }
  return 0;
}
