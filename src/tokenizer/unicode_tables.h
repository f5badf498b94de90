// Generated Unicode range tables (unicode_tables.cc) behind the classifiers in unicode.h.
#pragma once
#include <span>

namespace cascade::unicode_tables {

struct CodeRange {
  char32_t lo, hi;  // inclusive
};

extern const std::span<const CodeRange> kLetter;  // \p{L}
extern const std::span<const CodeRange> kNumber;  // \p{N}
extern const std::span<const CodeRange> kSpace;   // \s as Oniguruma defines it

}  // namespace cascade::unicode_tables
