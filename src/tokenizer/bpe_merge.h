// The BPE merge loop shared by both tokenizers: within one word, repeatedly merge the adjacent pair
// with the best priority (lowest value; leftmost on ties) until no pair can merge. Byte-level BPE and
// Hugging Face's BPE rank pairs by merge rank; llama2.c and sentencepiece by the merged piece's score.
// A heap of candidate pairs over a linked list of symbols makes it O(n log n) in the word length,
// where the textbook rescan-all-pairs loop is O(n^2): sentencepiece merges a whole line (10k
// characters, say) as one word.
#pragma once
#include <cstdint>
#include <optional>
#include <queue>
#include <string_view>
#include <vector>

namespace cascade {

// U+2581, the character sentencepiece writes for a space (its pieces, Metaspace in tokenizer.json).
inline constexpr std::string_view kSpaceMark = "\xE2\x96\x81";

// Two adjacent token ids as one key of a merge table.
inline uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

struct PairMerge {
  double priority;  // lower merges first
  int32_t id;       // token the pair becomes
};

// ids: the word's initial symbols, replaced by the merged ones. find_merge(left, right) returns the
// std::optional<PairMerge> for two adjacent token ids.
template <typename FindMerge>
void bpe_merge(std::vector<int32_t>& ids, const FindMerge& find_merge) {
  const int n = static_cast<int>(ids.size());
  if (n < 2) return;
  struct Candidate {
    double priority;
    int pos;             // position of the left symbol
    int32_t left, right; // the ids it was found for; stale once either symbol has changed
    int32_t merged;
    bool operator>(const Candidate& o) const {
      return priority != o.priority ? priority > o.priority : pos > o.pos;
    }
  };
  std::vector<int> next(n), prev(n);
  for (int i = 0; i < n; ++i) {
    next[i] = i + 1 < n ? i + 1 : -1;
    prev[i] = i - 1;
  }
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto consider = [&](int pos) {
    if (pos < 0 || next[pos] < 0) return;
    const int32_t l = ids[pos], r = ids[next[pos]];
    if (auto m = find_merge(l, r)) heap.push({m->priority, pos, l, r, m->id});
  };
  for (int i = 0; i + 1 < n; ++i) consider(i);
  constexpr int32_t kGone = -1;  // marks a symbol absorbed into its left neighbour
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    // A symbol's id identifies its span (spans only grow), so equal ids mean the pair is current.
    const int r = next[c.pos];
    if (ids[c.pos] != c.left || r < 0 || ids[r] != c.right) continue;
    ids[c.pos] = c.merged;
    ids[r] = kGone;
    next[c.pos] = next[r];
    if (next[r] >= 0) prev[next[r]] = c.pos;
    consider(prev[c.pos]);
    consider(c.pos);
  }
  std::erase(ids, kGone);
}

}  // namespace cascade
