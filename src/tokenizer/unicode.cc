// UTF-8 decoding by hand (strict: overlong forms, surrogates and code points past U+10FFFF are
// invalid) and binary search over the generated range tables, with an ASCII fast path since most
// text is ASCII.
#include "tokenizer/unicode.h"

#include <algorithm>

#include "tokenizer/unicode_tables.h"

namespace cascade::unicode {
namespace {

// Bytes a character starting with lead byte b occupies, or 0 when b cannot start one.
size_t sequence_length(unsigned char b) {
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) return 2;
  if (b >= 0xE0 && b <= 0xEF) return 3;
  if (b >= 0xF0 && b <= 0xF4) return 4;
  return 0;
}

bool is_continuation(unsigned char b) { return (b & 0xC0) == 0x80; }

bool in_ranges(std::span<const unicode_tables::CodeRange> ranges, char32_t cp) {
  auto it = std::upper_bound(ranges.begin(), ranges.end(), cp,
                             [](char32_t c, const unicode_tables::CodeRange& r) { return c < r.lo; });
  return it != ranges.begin() && cp <= std::prev(it)->hi;
}

}  // namespace

Char next_char(std::string_view text, size_t pos) {
  const auto b0 = static_cast<unsigned char>(text[pos]);
  const size_t len = sequence_length(b0);
  const Char invalid{b0, 1, false};
  if (len == 1) return {b0, 1, true};
  if (len == 0 || pos + len > text.size()) return invalid;
  char32_t cp = b0 & (0x7F >> len);
  for (size_t i = 1; i < len; ++i) {
    const auto b = static_cast<unsigned char>(text[pos + i]);
    if (!is_continuation(b)) return invalid;
    cp = (cp << 6) | (b & 0x3F);
  }
  const bool overlong = (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
  const bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
  if (overlong || surrogate || cp > 0x10FFFF) return invalid;
  return {cp, len, true};
}

bool is_letter(char32_t cp) {
  if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
  return in_ranges(unicode_tables::kLetter, cp);
}

bool is_number(char32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  return in_ranges(unicode_tables::kNumber, cp);
}

bool is_space(char32_t cp) {
  if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0D);
  return in_ranges(unicode_tables::kSpace, cp);
}

size_t complete_prefix(std::string_view bytes) {
  // Only the last three bytes can belong to an unfinished character: find its lead byte.
  const size_t n = bytes.size();
  for (size_t back = 1; back <= std::min<size_t>(3, n); ++back) {
    const auto b = static_cast<unsigned char>(bytes[n - back]);
    if (is_continuation(b)) continue;
    const size_t len = sequence_length(b);
    return len > back ? n - back : n;
  }
  return n;
}

}  // namespace cascade::unicode
