// Sentencepiece-style BPE with byte fallback (Llama). A segment of text (between added tokens)
// gets the dummy prefix "▁", its spaces become "▁", and the whole segment is one word: each
// character starts as its piece, or as the pieces of its bytes ("<0xE4>") when it has none, and
// pairs merge by score (llama2.c, sentencepiece) or by the rank of a Hugging Face merge list.
// Decoding turns byte pieces back into bytes and "▁" into spaces, and drops the dummy prefix's
// space from the first token.
#include <array>
#include <unordered_map>

#include "core/error.h"
#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe_merge.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace cascade {
namespace {

// Heterogeneous lookup, so looking up a character (a view into the text) needs no string copy.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using PieceIds = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// The byte a piece "<0xAB>" stands for, or -1.
int byte_of_piece(std::string_view piece) {
  if (piece.size() != 6 || !piece.starts_with("<0x") || piece[5] != '>') return -1;
  int value = 0;
  for (char c : piece.substr(3, 2)) {
    const int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

class SentencePieceBpe final : public Tokenizer {
 public:
  explicit SentencePieceBpe(SentencePieceVocab v) : v_(std::move(v)) {
    const int32_t n = vocab_size();
    if (v_.merges.empty() && static_cast<int32_t>(v_.scores.size()) != n)
      fail("sentencepiece vocabulary: ", n, " pieces but ", v_.scores.size(), " scores");
    for (auto id : {v_.bos, v_.eos, v_.unk})
      if (id) check_id(*id);
    byte_value_.assign(n, -1);
    byte_id_.fill(-1);
    for (int32_t id = 0; id < n; ++id)
      if (auto b = byte_of_piece(v_.pieces[id]); b >= 0 && byte_id_[b] < 0) {
        byte_value_[id] = b;
        byte_id_[b] = id;
      }
    // Byte pieces stay bytes even when a file marks them special (Hugging Face's trainer does):
    // skipping them on decode would drop every byte-fallback character.
    special_.assign(n, false);
    for (int32_t id : v_.special_ids) {
      check_id(id);
      special_[id] = byte_value_[id] < 0;
      added_.add(v_.pieces[id], id);
    }
    for (int32_t id : v_.added_ids) {
      check_id(id);
      added_.add(v_.pieces[id], id);
    }
    // Control tokens are never the result of a merge, so they stay out of the piece lookup.
    for (int32_t id = 0; id < n; ++id)
      if (!special_[id]) piece_id_.emplace(v_.pieces[id], id);
    for (size_t rank = 0; rank < v_.merges.size(); ++rank) {
      const auto& [a, b] = v_.merges[rank];
      const int32_t ia = lookup(a), ib = lookup(b), merged = lookup(a + b);
      if (ia < 0 || ib < 0 || merged < 0)
        fail("sentencepiece merge \"", a, " ", b, "\" (rank ", rank, ") uses a piece not in the vocabulary");
      merges_.emplace(pair_key(ia, ib), PairMerge{static_cast<double>(rank), merged});
    }
  }

  std::vector<int32_t> encode(std::string_view text, bool add_special) const override {
    std::vector<int32_t> ids;
    if (add_special && v_.add_bos && v_.bos) ids.push_back(*v_.bos);
    for (const auto& seg : added_.split(text)) {
      if (seg.id >= 0) {
        ids.push_back(seg.id);
        continue;
      }
      std::vector<int32_t> word = initial_symbols(normalize(seg.text, seg.offset == 0));
      if (v_.merges.empty()) {
        std::string pair;
        bpe_merge(word, [&](int32_t a, int32_t b) -> std::optional<PairMerge> {
          pair.assign(v_.pieces[a]).append(v_.pieces[b]);
          auto it = piece_id_.find(pair);
          if (it == piece_id_.end()) return std::nullopt;
          return PairMerge{-static_cast<double>(v_.scores[it->second]), it->second};
        });
      } else {
        bpe_merge(word, [&](int32_t a, int32_t b) -> std::optional<PairMerge> {
          auto it = merges_.find(pair_key(a, b));
          if (it == merges_.end()) return std::nullopt;
          return it->second;
        });
      }
      ids.insert(ids.end(), word.begin(), word.end());
    }
    return ids;
  }

  std::string decode(std::span<const int32_t> ids) const override {
    std::string out;
    bool first = true;
    for (int32_t id : ids) {
      if (is_special(id)) continue;
      out += token_bytes(id, first);
      first = false;
    }
    return out;
  }

  std::string token_bytes(int32_t id, bool first_in_sequence) const override {
    if (is_special(id)) return {};
    std::string out;
    if (byte_value_[id] >= 0) {
      out = std::string(1, static_cast<char>(byte_value_[id]));
    } else {
      const std::string& piece = v_.pieces[id];
      for (size_t pos = 0; pos < piece.size();) {
        if (std::string_view(piece).substr(pos).starts_with(kSpaceMark)) {
          out += ' ';
          pos += kSpaceMark.size();
        } else {
          out += piece[pos++];
        }
      }
    }
    if (first_in_sequence && v_.add_dummy_prefix && out.starts_with(' ')) out.erase(0, 1);
    return out;
  }

  bool is_special(int32_t id) const override {
    check_id(id);
    return special_[id];
  }

  int32_t vocab_size() const override { return static_cast<int32_t>(v_.pieces.size()); }
  std::optional<int32_t> bos_id() const override { return v_.bos; }
  std::optional<int32_t> eos_id() const override { return v_.eos; }
  std::string kind() const override { return "sentencepiece-bpe"; }

 private:
  void check_id(int32_t id) const {
    if (id < 0 || id >= vocab_size())
      fail("token id ", id, " is outside the vocabulary of ", vocab_size(), " tokens");
  }

  int32_t lookup(std::string_view piece) const {
    auto it = piece_id_.find(piece);
    return it == piece_id_.end() ? -1 : it->second;
  }

  // The segment with spaces as "▁" and the dummy prefix where the prefix rule puts one.
  std::string normalize(std::string_view segment, bool at_text_start) const {
    std::string out;
    for (char c : segment) {
      if (c == ' ')
        out += kSpaceMark;
      else
        out += c;
    }
    const bool prefix = v_.add_dummy_prefix && (at_text_start || !v_.prefix_only_first_segment) &&
                        !(v_.prefix_unless_space && out.starts_with(kSpaceMark));
    if (prefix) out.insert(0, kSpaceMark);
    return out;
  }

  // One symbol per character: its piece, else its bytes' pieces, else <unk>.
  std::vector<int32_t> initial_symbols(std::string_view text) const {
    std::vector<int32_t> ids;
    for (size_t pos = 0; pos < text.size();) {
      const auto c = unicode::next_char(text, pos);
      const std::string_view ch = text.substr(pos, c.len);
      pos += c.len;
      if (int32_t id = lookup(ch); id >= 0 && c.valid) {
        ids.push_back(id);
        continue;
      }
      bool all_bytes = true;
      for (char b : ch) all_bytes = all_bytes && byte_id_[static_cast<unsigned char>(b)] >= 0;
      if (all_bytes) {
        for (char b : ch) ids.push_back(byte_id_[static_cast<unsigned char>(b)]);
      } else if (v_.unk) {
        ids.push_back(*v_.unk);
      } else {
        fail("sentencepiece: the text has a character with no piece, no byte pieces and no <unk>");
      }
    }
    return ids;
  }

  SentencePieceVocab v_;
  PieceIds piece_id_;
  std::array<int32_t, 256> byte_id_{};  // byte -> its "<0xAB>" piece, or -1
  std::vector<int> byte_value_;         // id -> the byte a "<0xAB>" piece stands for, or -1
  std::unordered_map<uint64_t, PairMerge> merges_;
  std::vector<bool> special_;
  AddedTokenMatcher added_;
};

}  // namespace

std::unique_ptr<Tokenizer> make_sentencepiece_bpe(SentencePieceVocab vocab) {
  return std::make_unique<SentencePieceBpe>(std::move(vocab));
}

}  // namespace cascade
