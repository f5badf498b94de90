// The ADA plan (SPEC 3, 4 and the variants of 6): what one layer's compressed attention computes,
// derived once from the layer's selection, with no device and no model in it. The CPU and GPU
// executors (ada_attention.cc, ada_attention_cuda.cu) only carry it out: gather the query rows,
// project them at their positions, attend to the plan's keys (plus the own key and the bias where the
// plan says so), project out, and copy, mix or keep the outputs. While decoding, the plan is kept and
// extended one token at a time.
//
// Variants (SPEC 6):
//  - reconstruct lstsq (reps mode): a non-representative's output is a weighted sum of at most
//    kMixTerms earlier representatives' outputs (attention/ada_reconstruct.h), the weights computed
//    here from the normalised features.
//  - sinks N, window W (all-queries mode): query t also sees keys 0..N-1 and t-W+1..t at their
//    original positions. With proportional, a sink or window key that is not a representative has
//    n = 1 (bias 0); a representative keeps its SPEC-3 n_s(t) wherever it lies (inside the window too:
//    it still stands for every token it absorbed, even those the window shows again), so the option
//    changes only which non-representatives are seen, never a representative's weight.
//    The prefill with a window W >= 2 attends over every token's key, the window a mask in the
//    attention op (ops::AttentionArgs::window, the persistent keys pinned; with proportional, a
//    T x T bias), so its attention costs what exact attention costs: the variant tests quality,
//    not speed.
//    After the prefill the layer keeps a compressed cache: [ring of W-1 slots][persistent keys], the
//    persistent keys being the representatives and the sinks in position order (later representatives
//    appended), the ring holding the last W-1 tokens that are not persistent (token u in slot
//    u mod (W-1); a slot whose token is persistent is hidden by position kHiddenPos).
// In reps mode, sinks and window are refused (AdaAttentionFactory): a query there is a representative
// and the others copy it, so extra keys would change representatives' outputs only.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "attention/ada_reconstruct.h"
#include "select/incremental.h"
#include "select/selection.h"

namespace cascade {

enum class AdaQueries { reps, all };
enum class AdaReconstruct { copy, lstsq };

struct AdaPlanOptions {
  AdaQueries queries = AdaQueries::reps;
  bool proportional = false;
  AdaReconstruct reconstruct = AdaReconstruct::copy;
  int64_t sinks = 0, window = 0;
  int64_t ring() const { return window >= 2 ? window - 1 : 0; }
};

// A position later than any query's: a cache slot there is never seen.
inline constexpr int64_t kHiddenPos = std::numeric_limits<int64_t>::max() / 2;

// The proportional bias of a representative standing for n tokens, log n in float32 from float64 (the
// one rounding every executor adds, so that both devices add the same floats).
inline float log_count(int64_t n) { return float(std::log(double(n))); }

class AdaPlan {
 public:
  // The prefill of T tokens (token t at position pos[t]) whose selection is sel; z the layer's
  // normalised features [T, d] (read with reconstruct lstsq only; may be null otherwise).
  AdaPlan(const select::Selection& sel, const int64_t* pos, int64_t T, const AdaPlanOptions& o,
          const select::Features* z = nullptr);

  const AdaPlanOptions& options() const { return o_; }
  bool mixes() const { return o_.queries == AdaQueries::reps && o_.reconstruct == AdaReconstruct::lstsq; }

  // ---- the prefill ----
  // Query rows: the representatives (reps) or every token (all). Row i is token query_tokens()[i].
  const std::vector<int32_t>& query_tokens() const { return query_tokens_; }
  const std::vector<int64_t>& query_pos() const { return query_pos_; }
  // The prefill attention's keys: key i is the K/V of query row key_rows()[i], at key_pos()[i]
  // (sorted by position). Without a window these are also the compressed cache's rows.
  const std::vector<int32_t>& key_rows() const { return key_rows_; }
  const std::vector<int64_t>& key_pos() const { return key_pos_; }
  int64_t nk() const { return int64_t(key_rows_.size()); }
  // queries=reps, copy: token t's sub-layer output is representative copy_from()[t]'s ([T]).
  const std::vector<int32_t>& copy_from() const { return copy_from_; }
  // queries=reps, lstsq: token t's output is sum_k coef[k] * representative rep[k]'s ([T]; a
  // representative's row is itself with coefficient 1).
  const std::vector<MixRow>& mix() const { return mix_; }
  // queries=all: query row t also attends to its own key (it is not among the keys) ([T], 0/1).
  const std::vector<uint8_t>& own_key() const { return own_key_; }
  // proportional: the prefill attention adds a bias [query rows, nk]: at query token t and the key of
  // representative s (s <= t), log n_s(t) with n_s(t) = 1 + the tokens in (s, t] whose parent is s;
  // 0 elsewhere. It is O(rows * nk) (T^2 with a window), so the plan keeps what states it and each
  // executor builds it where it attends: bias_rows() on the host, a block of query rows at a time; the
  // GPU's kernel on the device.
  bool has_bias() const { return o_.proportional; }
  // [nk]: the key's token when it is a representative, else -1.
  const std::vector<int32_t>& key_rep_token() const { return key_rep_token_; }
  // [T]: the selection's parent of every token.
  const std::vector<int32_t>& parent() const { return parent_; }
  // [T + 1]: log_n()[k] = log_count(k), the bias's values, so that both devices add the
  // same floats.
  const std::vector<float>& log_n() const { return log_n_; }
  // Rows [first, first + count) of the bias into out [count, nk] (proportional only).
  void bias_rows(int64_t first, int64_t count, float* out) const;
  // The attention's window (ops::AttentionArgs::window; 0 without a ring: W = 1 is the own key) and
  // [nk] 0/1 the keys it never hides, the persistent ones (representatives and sinks); empty
  // without a window.
  int64_t key_window() const { return window_ ? o_.window : 0; }
  const std::vector<uint8_t>& key_pinned() const { return key_pinned_; }
  // The compressed cache after the prefill, [ring slots][persistent keys]: slot i holds the K/V of
  // query row cache_rows()[i] (a hidden ring slot: row 0). Equal to the keys without a window.
  const std::vector<int32_t>& cache_rows() const { return window_ ? cache_rows_ : key_rows_; }
  // The cache slots' positions as the last decoded token's attention sees them (its own ring write
  // is applied at the next step; a hidden ring slot: kHiddenPos).
  const std::vector<int64_t>& cache_pos() const { return cache_pos_; }
  // Cache slots whose positions are not sorted (a ring): the attention may not stop early.
  bool cache_sorted() const { return !window_; }
  // The number of representatives (queries=reps: the rows of their kept outputs).
  int64_t r() const { return int64_t(reps_.size()); }

  // Frees the prefill's per-token arrays once the prefill ran; what decoding needs stays.
  void end_prefill();

  // ---- decoding ----
  struct Step {
    bool attend = false;     // the token's Q/K/V are computed and it attends to the cache
    bool append = false;     // a persistent key (representative or sink): its K/V join the cache
                             // before the attention (with reps, its output joins the kept outputs)
    bool own_key = false;    // queries=all and not appended: it also sees its own key
    int32_t copy_from = -1;  // queries=reps, copy, not a representative: whose output it takes
    MixRow mix{};            // queries=reps, lstsq, not a representative: the weighted sum it takes
    int32_t ring_slot = -1;  // after the attention: this ring slot takes the token's K/V (ring_write)
    bool ring_write = false; // or is hidden (the token is persistent; the slot's old token left)
    std::vector<float> bias; // [cache slots after the append] log n (proportional), else empty
  };
  // The next token, at position p, decided by the layer's selection (st.parent a token index); z its
  // normalised features [d] (read with reconstruct lstsq only).
  Step decode(const select::IncrementalSelector::Step& st, int64_t p, const double* z = nullptr);
  // Cache slots now (ring and persistent).
  int64_t cache_size() const { return o_.ring() + int64_t(persistent_count_.size()); }
  // n of each persistent key (its slot less the ring) over the tokens so far: the proportional
  // bias's log n, for an executor that keeps the counts itself while decoding.
  const std::vector<int32_t>& persistent_counts() const { return persistent_count_; }

 private:
  void build_window_cache(int64_t T, const int64_t* pos);

  AdaPlanOptions o_;
  bool window_;  // a ring (window >= 2)
  int64_t d_ = 0, T_ = 0;
  std::vector<int32_t> query_tokens_, key_rows_, cache_rows_, copy_from_, reps_;
  std::vector<int32_t> rep_index_;        // token -> representative index j, or -1
  std::vector<int32_t> persistent_index_; // token -> persistent key index (its cache slot - ring), or -1
  std::vector<int64_t> query_pos_, key_pos_, cache_pos_;
  std::vector<uint8_t> own_key_, key_pinned_;
  std::vector<int32_t> key_rep_token_, parent_;  // proportional's bias, stated (see has_bias)
  std::vector<float> log_n_;
  std::vector<MixRow> mix_;
  std::vector<int32_t> persistent_count_;  // n of each persistent key over the tokens so far (1 for a sink)
  std::vector<double> reps_z_;             // lstsq: the representatives' feature rows [r, d]
  std::pair<int32_t, int64_t> ring_update_{-1, 0};  // the last step's ring slot and its new position
};

// Appends a decoded token's decision to a layer's selection (its trace covers every token seen).
void extend_selection(select::Selection& sel, const select::IncrementalSelector::Step& st);

}  // namespace cascade
