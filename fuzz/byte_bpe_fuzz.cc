// Fuzzes byte-level BPE (the GPT-NeoX fixture's tokenizer.json) on arbitrary bytes. Besides the
// shared checks (tokenizer_check.h), byte-level BPE is lossless: every byte has a token, so
// decode(encode(x)) == x for any x without the special token's text, valid UTF-8 or not (the CLI
// accepts non-UTF-8 text byte-wise; see the README's Hardening section).
#include <memory>

#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer_check.h"

namespace {

const cascade::Tokenizer& neox() {
  static const std::unique_ptr<cascade::Tokenizer> tok =
      cascade::load_tokenizer(std::string(CASCADE_TEST_DATA) + "/models/neox/tokenizer.json");
  return *tok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = cascade::fuzz::as_text(data, size);
  try {
    const auto ids = cascade::fuzz::checked_encode(neox(), text);
    if (text.find("<|endoftext|>") == std::string_view::npos) cascade::fuzz::require(neox().decode(ids) == text);
  } catch (const cascade::Error& e) {
    cascade::fuzz::printable(e);
    cascade::fuzz::require(false);  // every byte string is valid input to byte-level BPE
  }
  return 0;
}
