// Added-token matching by a scan with a first-byte filter: tokenizers have a handful of added
// tokens, so trying each at the few positions that pass the filter is cheap.
#include "tokenizer/added_tokens.h"

#include <algorithm>

namespace cascade {

void AddedTokenMatcher::add(std::string text, int32_t id) {
  if (text.empty()) return;
  first_byte_[static_cast<unsigned char>(text[0])] = true;
  tokens_.emplace_back(std::move(text), id);
  std::stable_sort(tokens_.begin(), tokens_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

std::vector<AddedTokenMatcher::Segment> AddedTokenMatcher::split(std::string_view text) const {
  std::vector<Segment> out;
  size_t plain_start = 0;
  for (size_t pos = 0; pos < text.size();) {
    const std::pair<std::string, int32_t>* hit = nullptr;
    if (first_byte_[static_cast<unsigned char>(text[pos])]) {
      for (const auto& t : tokens_)
        if (text.substr(pos).starts_with(t.first)) {
          hit = &t;
          break;
        }
    }
    if (!hit) {
      ++pos;
      continue;
    }
    if (pos > plain_start) out.push_back({text.substr(plain_start, pos - plain_start), -1, plain_start});
    out.push_back({text.substr(pos, hit->first.size()), hit->second, pos});
    pos += hit->first.size();
    plain_start = pos;
  }
  if (plain_start < text.size()) out.push_back({text.substr(plain_start), -1, plain_start});
  return out;
}

}  // namespace cascade
