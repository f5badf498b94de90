// ChildCounts: n_s(t) for the `proportional` attention option. Children grouped by parent (a counting
// sort over the parent vector, which visits children in position order) so each group is ascending and
// n_s(t) is one binary search: O(T) to build, O(log children) per lookup, no r x T table.
#include <algorithm>

#include "core/error.h"
#include "select/selection.h"

namespace cascade::select {

ChildCounts::ChildCounts(const std::vector<int32_t>& parent) {
  const size_t T = parent.size();
  offset_.assign(T + 1, 0);
  for (size_t c = 0; c < T; ++c) {
    const int32_t p = parent[c];
    CASCADE_CHECK(p >= 0 && size_t(p) <= c, "parent[", c, "] = ", p, " is not an earlier position");
    if (size_t(p) != c) ++offset_[size_t(p) + 1];
  }
  for (size_t s = 0; s < T; ++s) offset_[s + 1] += offset_[s];
  children_.resize(size_t(offset_[T]));
  std::vector<int32_t> fill(offset_.begin(), offset_.end() - 1);
  for (size_t c = 0; c < T; ++c)
    if (size_t(parent[c]) != c) children_[size_t(fill[size_t(parent[c])]++)] = int32_t(c);
}

int32_t ChildCounts::n(int32_t s, int32_t t) const {
  const auto first = children_.begin() + offset_[size_t(s)];
  const auto last = children_.begin() + offset_[size_t(s) + 1];
  return 1 + int32_t(std::upper_bound(first, last, t) - first);
}

}  // namespace cascade::select
