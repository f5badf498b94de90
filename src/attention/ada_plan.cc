#include "attention/ada_plan.h"

#include <cmath>

namespace cascade {

AdaPlan::AdaPlan(const select::Selection& sel, const int64_t* pos, int64_t T, AdaQueries queries, bool proportional)
    : queries_(queries), proportional_(proportional), reps_(sel.reps) {
  const int64_t r = int64_t(reps_.size());
  const bool all = queries == AdaQueries::all;
  rep_index_.assign(size_t(T), -1);
  rep_pos_.resize(size_t(r));
  for (int64_t j = 0; j < r; ++j) {
    rep_index_[size_t(reps_[size_t(j)])] = int32_t(j);
    rep_pos_[size_t(j)] = pos[reps_[size_t(j)]];
  }
  if (all) {
    query_tokens_.resize(size_t(T));
    own_key_.resize(size_t(T));
    for (int64_t t = 0; t < T; ++t) {
      query_tokens_[size_t(t)] = int32_t(t);
      own_key_[size_t(t)] = rep_index_[size_t(t)] < 0 ? 1 : 0;
    }
  } else {
    query_tokens_ = reps_;
    copy_from_.resize(size_t(T));
    for (int64_t t = 0; t < T; ++t) copy_from_[size_t(t)] = rep_index_[size_t(sel.parent[size_t(t)])];
  }
  cache_rows_.resize(size_t(r));
  for (int64_t j = 0; j < r; ++j) cache_rows_[size_t(j)] = all ? reps_[size_t(j)] : int32_t(j);
  query_pos_.resize(query_tokens_.size());
  for (size_t i = 0; i < query_tokens_.size(); ++i) query_pos_[i] = pos[query_tokens_[i]];
  if (!proportional) return;
  // n_s(t) counts s and its children up to t; tokens are in position order, so "representative s at
  // or before query t" is reps[j] <= t.
  const select::ChildCounts cc(sel.parent);
  const int64_t rows = int64_t(query_tokens_.size());
  bias_.assign(size_t(rows * r), 0.f);
  for (int64_t i = 0; i < rows; ++i) {
    const int32_t t = query_tokens_[size_t(i)];
    for (int64_t j = 0; j < r && reps_[size_t(j)] <= t; ++j)
      bias_[size_t(i * r + j)] = float(std::log(double(cc.n(reps_[size_t(j)], t))));
  }
  counts_.assign(size_t(r), 1);
  for (int64_t t = 0; t < T; ++t)
    if (sel.parent[size_t(t)] != t) ++counts_[size_t(rep_index_[size_t(sel.parent[size_t(t)])])];
}

void AdaPlan::end_prefill() {
  query_tokens_ = {};
  cache_rows_ = {};
  query_pos_ = {};
  copy_from_ = {};
  own_key_ = {};
  bias_ = {};
}

AdaPlan::Step AdaPlan::decode(const select::IncrementalSelector::Step& st, int64_t p) {
  const bool all = queries_ == AdaQueries::all;
  Step s;
  if (st.is_rep) {
    rep_index_.push_back(int32_t(reps_.size()));
    reps_.push_back(int32_t(rep_index_.size() - 1));
    rep_pos_.push_back(p);
    if (proportional_) counts_.push_back(1);
  } else {
    rep_index_.push_back(-1);
    if (proportional_) ++counts_[size_t(rep_index_[size_t(st.parent)])];
  }
  s.append = st.is_rep;
  s.attend = st.is_rep || all;
  s.own_key = all && !st.is_rep;
  if (!s.attend) s.copy_from = rep_index_[size_t(st.parent)];
  if (proportional_ && s.attend) {
    s.bias.resize(counts_.size());
    for (size_t j = 0; j < counts_.size(); ++j) s.bias[j] = float(std::log(double(counts_[j])));
  }
  return s;
}

void extend_selection(select::Selection& sel, const select::IncrementalSelector::Step& st) {
  if (st.is_rep) sel.reps.push_back(int32_t(sel.parent.size()));
  sel.parent.push_back(st.parent);
}

}  // namespace cascade
