// Incremental selection for decoding (SPEC 4): one object per layer holds what deciding the next token
// needs, so token-by-token decoding makes exactly the full selection's decisions on the extended
// sequence (every rule is causal). Greedy keeps the z rows of the representatives and decides a new
// token with r inner products; all-earlier must also see every earlier token, so it keeps all rows;
// span keeps the representatives' rows and the Cholesky factor of their Gram (select/span_basis.h).
// It also keeps n_s (1 + children so far) per representative for the `proportional` attention option.
#pragma once
#include <cstdint>
#include <vector>

#include "select/selection.h"
#include "select/span_basis.h"

namespace cascade::select {

class IncrementalSelector {
 public:
  struct Step {
    bool is_rep;
    int32_t parent;  // == the new token's position when is_rep
  };

  // An empty layer state for features of width d; the first step is token 0.
  IncrementalSelector(int64_t d, const Options& opts);
  // Continues a prefill: z the prompt's features [T, d], sel their selection under any mode.
  IncrementalSelector(const Features& z, const Selection& sel, const Options& opts);

  // Decides token T() from its features x [d] by the rule of opts.
  Step step(const float* x);
  // The decision comes from outside (inherit: the layer below's flag; random): a representative is
  // appended, anything else takes the best earlier representative as parent.
  Step step_imposed(const float* x, bool is_rep);

  int64_t T() const { return T_; }
  const std::vector<int32_t>& reps() const { return reps_; }
  // n_s for each representative, aligned with reps(): 1 + its children among tokens 0 .. T()-1.
  const std::vector<int32_t>& counts() const { return counts_; }
  // Inner products and time of all steps so far (every one is causal: needed == computed).
  const GramCounts& cost() const { return cost_; }

 private:
  struct Scores {
    int32_t best_rep;  // index in reps_ of the most correlated representative (ties: the earliest)
    double best_rho;   // its rho
    double top;        // the largest rho over every kept row
  };
  // Normalises x into z_ and correlates it with every kept row.
  Scores correlate(const float* x);
  Step commit(bool is_rep, int32_t best_rep);

  Options opts_;
  double theta_;
  int64_t d_;
  int64_t T_ = 0;
  bool keep_all_;                  // all-earlier: keep every token's row, not only representatives'
  std::vector<double> rows_;       // kept z rows in position order, [rows, d]
  std::vector<int32_t> row_rep_;   // per kept row: its index in reps_, or -1 for a non-representative
  std::vector<int32_t> reps_, counts_;
  std::vector<double> z_, rho_;    // the new token's z and its correlations (scratch)
  detail::SpanBasis span_;         // span: the representatives' factor, grown with reps_
  GramCounts cost_;
};

}  // namespace cascade::select
