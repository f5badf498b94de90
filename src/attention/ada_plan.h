// The ADA plan (SPEC 3-4): what one layer's compressed attention computes, derived once from the
// layer's selection, with no device and no model in it. The CPU and GPU executors
// (ada_attention.cc, ada_attention_cuda.cu) only carry it out: gather the query rows, project them at
// their positions, attend to the compressed cache (plus the own key and the bias where the plan says
// so), project out, and copy or keep the outputs. While decoding, the plan is kept and extended one
// token at a time.
#pragma once
#include <cstdint>
#include <vector>

#include "select/incremental.h"
#include "select/selection.h"

namespace cascade {

enum class AdaQueries { reps, all };

class AdaPlan {
 public:
  // The prefill of T tokens (token t at position pos[t]) whose selection is sel.
  AdaPlan(const select::Selection& sel, const int64_t* pos, int64_t T, AdaQueries queries, bool proportional);

  // ---- the prefill ----
  // Query rows: the representatives (reps) or every token (all). Row i is token query_tokens()[i].
  const std::vector<int32_t>& query_tokens() const { return query_tokens_; }
  const std::vector<int64_t>& query_pos() const { return query_pos_; }
  // The compressed cache's rows: representative j is token reps()[j] at position rep_pos()[j]. With
  // queries=all, row reps()[j] of the projected rows holds its K and V; with reps, row j.
  const std::vector<int32_t>& reps() const { return reps_; }
  const std::vector<int64_t>& rep_pos() const { return rep_pos_; }
  int64_t r() const { return int64_t(reps_.size()); }
  // The query row holding representative j's K/V and output: reps()[j] with queries=all, j with reps.
  const std::vector<int32_t>& cache_rows() const { return cache_rows_; }
  // queries=reps: token t's sub-layer output is representative copy_from()[t]'s ([T]).
  const std::vector<int32_t>& copy_from() const { return copy_from_; }
  // queries=all: query row t also attends to its own key (t is not a representative) ([T], 0/1).
  const std::vector<uint8_t>& own_key() const { return own_key_; }
  // proportional: [query rows, r] log n_s(t) for query position t and representative s at or before
  // it (0 elsewhere: those keys are masked by position); empty without the option.
  const std::vector<float>& bias() const { return bias_; }

  // Frees the prefill's per-token arrays (query rows, copy table, own-key mask, bias) once the
  // prefill ran; what decoding needs stays.
  void end_prefill();

  // ---- decoding ----
  struct Step {
    bool attend = false;    // the token's Q/K/V are computed and it attends to the cache
    bool append = false;    // a representative: its K/V (and with reps, its output) join the cache
    bool own_key = false;   // queries=all, not a representative: it also sees its own key
    int32_t copy_from = -1; // queries=reps, not a representative: the representative whose output it takes
    std::vector<float> bias;  // proportional: [r after the append] log n_s at this token's position
  };
  // The next token, at position p, decided by the layer's selection (st.parent a token index).
  Step decode(const select::IncrementalSelector::Step& st, int64_t p);

 private:
  AdaQueries queries_;
  bool proportional_;
  std::vector<int32_t> query_tokens_, reps_, cache_rows_, copy_from_, rep_index_;  // rep_index_: token -> j, or -1
  std::vector<int64_t> query_pos_, rep_pos_;
  std::vector<uint8_t> own_key_;
  std::vector<float> bias_;
  std::vector<int32_t> counts_;  // proportional: n_s of each representative over the tokens so far
};

// Appends a decoded token's decision to a layer's selection (its trace covers every token seen).
void extend_selection(select::Selection& sel, const select::IncrementalSelector::Step& st);

}  // namespace cascade
