// Properties every tokenizer must keep on any bytes, shared by the two tokenizer fuzz targets: ids
// inside the vocabulary (with and without the special prefix), decode total on them, and the
// streaming decoder (what `cascade generate` prints) giving exactly what decode gives.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.h"
#include "tokenizer/tokenizer.h"

namespace cascade::fuzz {

// The ids of text (without the special prefix) after the checks above.
inline std::vector<int32_t> checked_encode(const Tokenizer& tok, std::string_view text) {
  for (int32_t id : tok.encode(text, true)) require(id >= 0 && id < tok.vocab_size());
  const std::vector<int32_t> ids = tok.encode(text, false);
  for (int32_t id : ids) require(id >= 0 && id < tok.vocab_size());
  const std::string decoded = tok.decode(ids);
  StreamDecoder stream(tok);
  std::string streamed;
  for (int32_t id : ids) streamed += stream.push(id);
  streamed += stream.flush();
  require(streamed == decoded);
  return ids;
}

}  // namespace cascade::fuzz
