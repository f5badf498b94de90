// Byte-level BPE (GPT-2 family), matching Hugging Face's ByteLevel BPE: added tokens are cut out
// first, each remaining segment is split by the GPT-2 regex (after splitting off single digits
// where the vocabulary asks for it), each word's bytes become the tokens of GPT-2's printable byte
// alphabet and merge by rank. A byte the vocabulary has no token for becomes unk or is dropped.
// Words recur (" the", ","), so each encode call caches the ids of the words it has merged: the
// 1.3 MB WikiText-2 test file has about 21k distinct words among 247k.
#include <array>
#include <unordered_map>

#include "core/error.h"
#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe_merge.h"
#include "tokenizer/gpt2_pretokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace cascade {
namespace {

// GPT-2's reversible byte -> character map: printable Latin-1 bytes stand for themselves, the other
// 68 bytes take the code points from U+0100 upward, in byte order.
std::array<char32_t, 256> byte_to_char() {
  std::array<char32_t, 256> map{};
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    map[b] = printable ? static_cast<char32_t>(b) : next++;
  }
  return map;
}

// UTF-8 of a byte-alphabet character; the alphabet ends at U+0143, so two bytes at most.
std::string utf8(char32_t cp) {
  if (cp < 0x80) return std::string(1, static_cast<char>(cp));
  return {static_cast<char>(0xC0 | (cp >> 6)), static_cast<char>(0x80 | (cp & 0x3F))};
}

// The bytes a vocabulary token stands for. Like Hugging Face's ByteLevel decoder, a token with a
// character outside the byte alphabet (an added token such as a run of spaces) is its own text.
std::string token_to_bytes(const std::string& token, const std::unordered_map<char32_t, uint8_t>& bytes_of) {
  std::string out;
  for (size_t pos = 0; pos < token.size();) {
    const auto c = unicode::next_char(token, pos);
    auto it = bytes_of.find(c.cp);
    if (!c.valid || it == bytes_of.end()) return token;
    out += static_cast<char>(it->second);
    pos += c.len;
  }
  return out;
}

class ByteBpe final : public Tokenizer {
 public:
  explicit ByteBpe(ByteBpeVocab v) : v_(std::move(v)) {
    const int32_t n = vocab_size();
    std::unordered_map<std::string, int32_t> id_of;
    for (int32_t id = 0; id < n; ++id) id_of.emplace(v_.tokens[id], id);
    auto lookup = [&](const std::string& token, const char* what) {
      auto it = id_of.find(token);
      if (it == id_of.end()) fail("byte-level BPE: ", what, " \"", token, "\" is not in the vocabulary");
      return it->second;
    };

    const auto chars = byte_to_char();
    std::unordered_map<char32_t, uint8_t> bytes_of;
    if (v_.unk) check_id(*v_.unk);
    for (int b = 0; b < 256; ++b) {
      auto it = id_of.find(utf8(chars[b]));
      byte_id_[b] = it != id_of.end() ? it->second : v_.unk.value_or(kDropped);
      bytes_of[chars[b]] = static_cast<uint8_t>(b);
    }
    for (size_t rank = 0; rank < v_.merges.size(); ++rank) {
      const auto& [a, b] = v_.merges[rank];
      const int32_t merged = lookup(a + b, "merge result");
      merges_.emplace(pair_key(lookup(a, "merge part"), lookup(b, "merge part")),
                      PairMerge{static_cast<double>(rank), merged});
    }

    special_.assign(n, false);
    for (int32_t id : v_.special_ids) {
      check_id(id);
      special_[id] = true;
      added_.add(v_.tokens[id], id);
    }
    for (int32_t id : v_.added_ids) {
      check_id(id);
      added_.add(v_.tokens[id], id);
    }
    for (auto id : {v_.bos, v_.eos})
      if (id) check_id(*id);
    bytes_.reserve(n);
    for (int32_t id = 0; id < n; ++id) bytes_.push_back(token_to_bytes(v_.tokens[id], bytes_of));
  }

  std::vector<int32_t> encode(std::string_view text, bool add_special) const override {
    std::vector<int32_t> ids;
    if (add_special && v_.add_bos && v_.bos) ids.push_back(*v_.bos);
    std::unordered_map<std::string_view, std::vector<int32_t>> cache;  // views into text
    std::vector<int32_t> word_ids;
    for (const auto& seg : added_.split(text)) {
      if (seg.id >= 0) {
        ids.push_back(seg.id);
        continue;
      }
      for (std::string_view word : words(seg.text)) {
        if (auto it = cache.find(word); it != cache.end()) {
          ids.insert(ids.end(), it->second.begin(), it->second.end());
          continue;
        }
        word_ids.clear();
        for (char c : word)
          if (const int32_t id = byte_id_[static_cast<unsigned char>(c)]; id != kDropped) word_ids.push_back(id);
        bpe_merge(word_ids, [this](int32_t a, int32_t b) -> std::optional<PairMerge> {
          auto it = merges_.find(pair_key(a, b));
          if (it == merges_.end()) return std::nullopt;
          return it->second;
        });
        ids.insert(ids.end(), word_ids.begin(), word_ids.end());
        cache.emplace(word, word_ids);
      }
    }
    return ids;
  }

  std::string decode(std::span<const int32_t> ids) const override {
    std::string out;
    for (int32_t id : ids) out += token_bytes(id, false);
    return out;
  }

  std::string token_bytes(int32_t id, bool /*first_in_sequence*/) const override {
    return is_special(id) ? std::string() : bytes_[id];
  }

  bool is_special(int32_t id) const override {
    check_id(id);
    return special_[id];
  }

  int32_t vocab_size() const override { return static_cast<int32_t>(v_.tokens.size()); }
  std::optional<int32_t> bos_id() const override { return v_.bos; }
  std::optional<int32_t> eos_id() const override { return v_.eos; }
  std::string kind() const override { return "byte-bpe"; }

 private:
  void check_id(int32_t id) const {
    if (id < 0 || id >= vocab_size())
      fail("token id ", id, " is outside the vocabulary of ", vocab_size(), " tokens");
  }

  // The pre-tokenizer's words of a segment without added tokens.
  std::vector<std::string_view> words(std::string_view segment) const {
    if (!v_.individual_digits) return gpt2_pretokenize(segment);
    std::vector<std::string_view> out;
    for (std::string_view piece : split_digits(segment)) {
      const auto w = gpt2_pretokenize(piece);
      out.insert(out.end(), w.begin(), w.end());
    }
    return out;
  }

  static constexpr int32_t kDropped = -1;  // byte_id_ of a byte with no token and no unk
  ByteBpeVocab v_;
  std::array<int32_t, 256> byte_id_{};
  std::unordered_map<uint64_t, PairMerge> merges_;  // (left id, right id) -> rank, merged id
  std::vector<bool> special_;
  AddedTokenMatcher added_;
  std::vector<std::string> bytes_;  // id -> the bytes it decodes to
};

}  // namespace

std::unique_ptr<Tokenizer> make_byte_bpe(ByteBpeVocab vocab) {
  return std::make_unique<ByteBpe>(std::move(vocab));
}

}  // namespace cascade
