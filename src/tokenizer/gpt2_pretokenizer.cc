// Hand-written GPT-2 regex. Character classes come from unicode.h; a byte that is not valid UTF-8
// is a character of no class, so it falls into the "other" alternative  ?[^\s\p{L}\p{N}]+ .
#include "tokenizer/gpt2_pretokenizer.h"

#include "tokenizer/unicode.h"

namespace cascade {
namespace {

enum class Class { kLetter, kNumber, kSpace, kOther };

Class classify(const unicode::Char& c) {
  if (!c.valid) return Class::kOther;
  if (unicode::is_letter(c.cp)) return Class::kLetter;
  if (unicode::is_number(c.cp)) return Class::kNumber;
  if (unicode::is_space(c.cp)) return Class::kSpace;
  return Class::kOther;
}

// Length of the contraction ('s 't 're 've 'm 'll 'd; case-sensitive as in GPT-2) at pos, or 0.
size_t contraction(std::string_view text, size_t pos) {
  if (text[pos] != '\'') return 0;
  const std::string_view rest = text.substr(pos + 1);
  for (std::string_view suffix : {"s", "t", "re", "ve", "m", "ll", "d"})
    if (rest.starts_with(suffix)) return 1 + suffix.size();
  return 0;
}

// End of the run of characters of class cls starting at pos.
size_t run_end(std::string_view text, size_t pos, Class cls) {
  while (pos < text.size()) {
    const auto c = unicode::next_char(text, pos);
    if (classify(c) != cls) break;
    pos += c.len;
  }
  return pos;
}

// Length of the match starting at pos (pos < text.size()).
size_t match_at(std::string_view text, size_t pos) {
  if (size_t n = contraction(text, pos)) return n;
  // " ?X+" for X in letters, numbers, other: an optional U+0020, then a run of one class.
  size_t start = pos;
  if (text[pos] == ' ' && pos + 1 < text.size()) start = pos + 1;
  const auto first = unicode::next_char(text, start);
  const Class cls = classify(first);
  if (cls != Class::kSpace) return run_end(text, start, cls) - pos;
  // A whitespace run. At the end of text \s+(?!\S) takes all of it; before a non-space it gives
  // back its last character, which then leads the next match (" word"); a run of one character
  // before a non-space fails \s+(?!\S) and is matched alone by \s+.
  const size_t end = run_end(text, pos, Class::kSpace);
  if (end == text.size()) return end - pos;
  size_t last = pos;  // start of the run's last character
  for (size_t p = pos; p < end; p += unicode::next_char(text, p).len) last = p;
  return last > pos ? last - pos : end - pos;
}

}  // namespace

std::vector<std::string_view> gpt2_pretokenize(std::string_view text) {
  std::vector<std::string_view> words;
  for (size_t pos = 0; pos < text.size();) {
    const size_t n = match_at(text, pos);
    words.push_back(text.substr(pos, n));
    pos += n;
  }
  return words;
}

std::vector<std::string_view> split_digits(std::string_view text) {
  std::vector<std::string_view> pieces;
  size_t start = 0;  // of the run of non-digits being collected
  for (size_t pos = 0; pos < text.size();) {
    const auto c = unicode::next_char(text, pos);
    if (classify(c) == Class::kNumber) {
      if (pos > start) pieces.push_back(text.substr(start, pos - start));
      pieces.push_back(text.substr(pos, c.len));
      start = pos + c.len;
    }
    pos += c.len;
  }
  if (start < text.size()) pieces.push_back(text.substr(start));
  return pieces;
}

}  // namespace cascade
