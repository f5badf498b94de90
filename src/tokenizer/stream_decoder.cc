// Streaming decode: each token's bytes are appended to what is held back, and everything up to the
// last complete UTF-8 character is released. "First in sequence" (the sentencepiece dummy-prefix
// space) is the first token that is not special, as in Tokenizer::decode.
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace cascade {

std::string StreamDecoder::push(int32_t id) {
  if (tok_.is_special(id)) return {};
  pending_ += tok_.token_bytes(id, first_);
  first_ = false;
  const size_t ready = unicode::complete_prefix(pending_);
  std::string out = pending_.substr(0, ready);
  pending_.erase(0, ready);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace cascade
