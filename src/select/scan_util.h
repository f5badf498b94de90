// Internal helpers shared by the selection files: the threshold test, the argmax with its tie rule,
// the causal cross-Gram, the added/removed difference, the clock and the checks on a previous layer's
// selection. Not part of the public API (include select/selection.h).
#pragma once
#include <chrono>
#include <cstdint>
#include <vector>

#include "select/selection.h"

namespace cascade::select::detail {

// rho reaches theta up to the float64 rounding of a unit inner product (selection.h).
inline bool reaches(double rho, double theta) { return rho >= theta - kRhoSlack; }

// Running argmax over candidates offered in increasing position: a strict > keeps the first of
// equal values, which is the tie rule "smallest s".
struct Best {
  double rho = -2.0;  // below any correlation, so the first candidate always wins
  int32_t pos = -1;
  void offer(double v, int32_t s) {
    if (v > rho) {
      rho = v;
      pos = s;
    }
  }
};

// The causal cross-Gram against a sorted set of columns (the layer below's reps for the cascade, the
// imposed set for inherit / random), evaluated one panel of rows at a time so that a scan in token
// order holds O(panel * r) of it. After fill(a, b): at(u, j) = <z_u, z_{cols[j]}> for a <= u < b and
// cols[j] < u.
class CrossGram {
 public:
  static constexpr int64_t kPanelRows = 256;
  // Records cols in out.trace; fill() adds there and to out.cost what its GEMM evaluates.
  CrossGram(const Features& z, const std::vector<int32_t>& cols, Selection& out);
  // Rows a .. b-1 (b - a <= kPanelRows) against the columns causal for at least one of them.
  void fill(int64_t a, int64_t b);
  double at(int64_t u, int64_t j) const { return panel_[size_t((u - a_) * r_ + j)]; }

 private:
  const Features& z_;
  const std::vector<int32_t>& cols_;
  Selection& out_;
  int64_t r_;
  int64_t a_ = 0;
  std::vector<double> col_rows_;  // [r, d]: the members' z rows, gathered for the GEMM
  std::vector<double> panel_;     // [kPanelRows, r]
};

// added = now \ prev, removed = prev \ now; both inputs sorted.
void fill_diff(const std::vector<int32_t>& prev, Selection& out);

// Throws cascade::Error unless prev is a selection over the same T tokens as z (the CPU and the
// GPU selections both check with it).
void check_prev(int64_t T, const Selection& prev);
inline void check_prev(const Features& z, const Selection& prev) { check_prev(z.T, prev); }

// The number of causal rows t > s of column s in a sequence of T tokens.
inline int64_t rows_after(int64_t T, int64_t s) { return T - 1 - s; }

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace cascade::select::detail
