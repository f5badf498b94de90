// Jaccard overlap of two representative sets, by one merge pass over the sorted positions.
#include "select/selection.h"

namespace cascade::select {

double jaccard(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  size_t i = 0, j = 0, both = 0;
  while (i < a.size() && j < b.size()) {
    if (a[i] == b[j]) ++both, ++i, ++j;
    else if (a[i] < b[j]) ++i;
    else ++j;
  }
  const size_t uni = a.size() + b.size() - both;
  return uni ? double(both) / double(uni) : 1.0;
}

}  // namespace cascade::select
