// Token selection (SPEC sections 1, 2, 5): which tokens of one layer are representatives and whose
// parent each other token is, computed from that layer's selection features X [T, d].
//
// Design: pure algorithms on an activation matrix, no model code. Features are normalised to z in
// float64 and every inner product is a float64 BLAS call, because the CPU is the reference: the full
// selection and the exact cascade evaluate the same rho(t, s) with different kernels (syrk / gemm /
// gemv), and in float64 those differ by ~1e-16, far below any gap that matters at theta. A rho that
// reaches theta - kRhoSlack counts as reaching theta, so that theta = 1 (tau = 0) still recognises an
// exact duplicate whose computed self-correlation rounds to 1 - d * 2^-53.
//
// Every result carries its cost counted where the inner products are evaluated (GramCounts) and a
// trace of which Gram columns were evaluated, so a test or a report can re-derive the counts.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cascade::select {

enum class Similarity { pearson, cosine };  // pearson centres each row over its d features
// SPEC 1: decide against representatives / all earlier tokens; SPEC 6 `span`: against the span of the
// earlier representatives (||P z_t||^2 >= 1 - tau^2; select/span_basis.h)
enum class Rule { greedy, all_earlier, span };
enum class Mode { full, cascade, inherit, capped, random };

// rho >= theta - kRhoSlack counts as rho >= theta (see the design note).
inline constexpr double kRhoSlack = 1e-10;

struct Options {
  double tau = 0.30;
  Similarity similarity = Similarity::pearson;
  Rule rule = Rule::greedy;
  // theta = 1 - tau^2; throws cascade::Error unless tau is in [0, 1).
  double theta() const;
};

// How a layer after the first is selected from the layer below.
struct ModeSpec {
  Mode mode = Mode::cascade;
  int64_t cap = 0;    // capped: the most additions before the layer is refreshed by a full selection
  uint64_t seed = 0;  // random: with the layer index, fixes the set
};

// Parse helpers for option text; each throws cascade::Error on anything else.
Similarity parse_similarity(std::string_view text);  // "pearson" | "cosine"
Rule parse_rule(std::string_view text);              // "greedy" | "all-earlier" | "span"
ModeSpec parse_mode(std::string_view text);  // "full" "cascade" "inherit" "capped:K" "random[:SEED]"
std::string to_string(Similarity s);
std::string to_string(Rule r);
std::string to_string(const ModeSpec& m);

// The normalised features of one layer: z [T, d] row-major float64, unit rows (or zero rows).
struct Features {
  int64_t T = 0, d = 0;
  std::vector<double> z;
  double seconds = 0;  // time spent normalising
  const double* row(int64_t t) const { return z.data() + t * d; }
};

// x [T, d] row-major float32 -> z. Throws cascade::Error if T < 1 or d < 1.
Features normalize(const float* x, int64_t T, int64_t d, Similarity similarity);
// One row x [d] -> z [d], the same arithmetic as normalize (decoding uses it for a new token).
void normalize_row(const float* x, int64_t d, Similarity similarity, double* z);

// Gram operations (SPEC 5) and wall time of one selection call.
struct GramCounts {
  int64_t needed = 0;    // causal entries (row t, column s, t > s) of the columns the rule uses
  int64_t computed = 0;  // every inner product the kernels evaluate
  double seconds = 0;
  GramCounts& operator+=(const GramCounts& o);
};

// Which inner products a selection evaluated, for tests and reports.
struct GramTrace {
  // Rows row0 .. row0+rows-1 of the cross-Gram against the first cols of cross_columns.
  struct Panel {
    int32_t row0, rows, cols;
  };
  bool full_gram = false;               // the causal Gram, lower triangle with diagonal: T(T+1)/2
  std::vector<int32_t> cross_columns;   // the set a cross-Gram was evaluated against (sorted)
  std::vector<Panel> cross_panels;      // what of it was evaluated
  std::vector<int32_t> spot_columns;    // columns s computed on the spot, rows u > s
};

struct Selection {
  std::vector<int32_t> reps;     // sorted positions of the representatives; always holds 0
  std::vector<int32_t> parent;   // [T]; parent[t] == t exactly for representatives
  std::vector<int32_t> added;    // reps not in the layer below (sorted); empty without one
  std::vector<int32_t> removed;  // the layer below's reps not in reps (sorted)
  bool refreshed = false;        // capped: the cap was passed and a full selection replaced it
  GramCounts cost;
  GramTrace trace;
  int64_t T() const { return int64_t(parent.size()); }
};

// SPEC 1: the reference. The whole causal Gram, then a scan in token order. prev (optional) only
// fills added / removed.
Selection run_full(const Features& z, const Options& opts, const Selection* prev = nullptr);
// SPEC 2: exact cascade from the layer below; the same set and parents as run_full. Rules greedy and
// span, which decide t from its inner products with the representatives before it (cascade::Error
// for all-earlier).
Selection run_cascade(const Features& z, const Selection& prev, const Options& opts);
// The cascade allowed at most cap additions; past that a full selection (refreshed = true) whose
// cost adds to what the cascade had evaluated before it stopped.
Selection run_capped(const Features& z, const Selection& prev, const Options& opts, int64_t cap);
// reps = prev.reps, no validation; parent(t) = the best earlier rep.
Selection run_inherit(const Features& z, const Selection& prev, const Options& opts);
// Control: a uniformly random set of |prev.reps| tokens holding 0, fixed by (seed, layer);
// parent(t) = the best earlier member.
Selection run_random(const Features& z, const Selection& prev, const Options& opts, uint64_t seed,
                     int layer);
// Dispatch: prev == nullptr (layer 0) runs the full selection whatever the mode.
Selection run_layer(const Features& z, const Selection* prev, const Options& opts,
                    const ModeSpec& mode, int layer);

// J(a, b) = |a ∩ b| / |a ∪ b| of two sorted sets of positions (1 when both are empty).
double jaccard(const std::vector<int32_t>& a, const std::vector<int32_t>& b);

// n_s(t) = 1 + #children c of s with c <= t (SPEC 3 `proportional`), from the parent vector:
// children grouped by parent in position order, so one lookup is a binary search.
class ChildCounts {
 public:
  explicit ChildCounts(const std::vector<int32_t>& parent);
  // s a representative; t >= s a query position.
  int32_t n(int32_t s, int32_t t) const;

 private:
  std::vector<int32_t> offset_;    // [T + 1]: children of s are children_[offset_[s] .. offset_[s+1])
  std::vector<int32_t> children_;  // ascending positions within each parent's group
};

}  // namespace cascade::select
