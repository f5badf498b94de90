// Added tokens ("<|endoftext|>", "<s>", ...) are found literally in the text before any
// pre-tokenisation, as Hugging Face does: the text is cut around them and each remaining segment is
// encoded on its own. Matching is leftmost-longest, like Hugging Face's Aho-Corasick matcher.
// Hugging Face's per-token lstrip/rstrip/single_word options are not modelled (none of the supported
// tokenizers sets them).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cascade {

class AddedTokenMatcher {
 public:
  void add(std::string text, int32_t id);  // empty texts are ignored

  struct Segment {
    std::string_view text;
    int32_t id;          // the added token's id, or -1 for ordinary text
    size_t offset;       // where the segment starts in the original text
  };
  // text cut into ordinary segments (never empty) and added tokens, in order.
  std::vector<Segment> split(std::string_view text) const;

 private:
  std::vector<std::pair<std::string, int32_t>> tokens_;  // longest first
  bool first_byte_[256] = {};                            // a quick filter for match attempts
};

}  // namespace cascade
