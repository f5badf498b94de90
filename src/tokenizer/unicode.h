// UTF-8 stepping and the three character classes the GPT-2 pre-tokenizer regex needs. Text from
// users may be invalid UTF-8; a stray byte is then read as a one-byte character of no class, so
// every byte still reaches the byte-level BPE and round-trips.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace cascade::unicode {

struct Char {
  char32_t cp;     // code point; for an invalid byte, that byte's value
  size_t len;      // bytes it occupies (1 for an invalid byte)
  bool valid;
};

// The character starting at text[pos] (pos < text.size()).
Char next_char(std::string_view text, size_t pos);

bool is_letter(char32_t cp);  // \p{L}
bool is_number(char32_t cp);  // \p{N}
bool is_space(char32_t cp);   // \s

// Length of the longest prefix of bytes that does not end inside an incomplete multi-byte
// character: what a streaming decoder can print now. Invalid bytes count as complete.
size_t complete_prefix(std::string_view bytes);

}  // namespace cascade::unicode
