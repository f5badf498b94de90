#include "attention/ada_plan.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace cascade {

AdaPlan::AdaPlan(const select::Selection& sel, const int64_t* pos, int64_t T, const AdaPlanOptions& o,
                 const select::Features* z)
    : o_(o), window_(o.queries == AdaQueries::all && o.ring() > 0), T_(T), reps_(sel.reps) {
  const bool all = o.queries == AdaQueries::all;
  CASCADE_CHECK(all || (o.sinks == 0 && o.window == 0), "ADA plan: sinks and window need queries=all");
  CASCADE_CHECK(o.sinks >= 0 && o.window >= 0, "ADA plan: negative sinks or window");
  const int64_t r = int64_t(reps_.size());
  rep_index_.assign(size_t(T), -1);
  for (int64_t j = 0; j < r; ++j) rep_index_[size_t(reps_[size_t(j)])] = int32_t(j);
  // Persistent keys: the representatives and the sinks, in position order.
  std::vector<int32_t> persistent;
  persistent_index_.assign(size_t(T), -1);
  for (int64_t t = 0; t < T; ++t)
    if (rep_index_[size_t(t)] >= 0 || t < o.sinks) {
      persistent_index_[size_t(t)] = int32_t(persistent.size());
      persistent.push_back(int32_t(t));
    }
  persistent_count_.assign(persistent.size(), 1);
  for (int64_t t = 0; t < T; ++t)
    if (sel.parent[size_t(t)] != t) ++persistent_count_[size_t(persistent_index_[size_t(sel.parent[size_t(t)])])];

  // Query rows, and the keys as rows of the projected query rows.
  if (all) {
    query_tokens_.resize(size_t(T));
    for (int64_t t = 0; t < T; ++t) query_tokens_[size_t(t)] = int32_t(t);
    if (window_) {
      key_rows_ = query_tokens_;
    } else {
      key_rows_ = persistent;
    }
    own_key_.resize(size_t(T));
    for (int64_t t = 0; t < T; ++t) own_key_[size_t(t)] = !window_ && persistent_index_[size_t(t)] < 0 ? 1 : 0;
  } else {
    query_tokens_ = reps_;
    key_rows_.resize(size_t(r));
    for (int64_t j = 0; j < r; ++j) key_rows_[size_t(j)] = int32_t(j);
  }
  query_pos_.resize(query_tokens_.size());
  for (size_t i = 0; i < query_tokens_.size(); ++i) query_pos_[i] = pos[query_tokens_[i]];
  key_pos_.resize(key_rows_.size());
  for (size_t i = 0; i < key_rows_.size(); ++i) key_pos_[i] = pos[query_tokens_[size_t(key_rows_[i])]];

  // What a non-representative takes in reps mode.
  if (!all && o.reconstruct == AdaReconstruct::copy) {
    copy_from_.resize(size_t(T));
    for (int64_t t = 0; t < T; ++t) copy_from_[size_t(t)] = rep_index_[size_t(sel.parent[size_t(t)])];
  }
  if (!all && o.reconstruct == AdaReconstruct::lstsq) {
    CASCADE_CHECK(z && z->T == T, "ADA plan: lstsq needs the layer's features");
    d_ = z->d;
    reps_z_.resize(size_t(r * d_));
    for (int64_t j = 0; j < r; ++j) std::copy(z->row(reps_[size_t(j)]), z->row(reps_[size_t(j)]) + d_, &reps_z_[size_t(j * d_)]);
    mix_.resize(size_t(T));
    int64_t before = 0;  // representatives before t
    for (int64_t t = 0; t < T; ++t) {
      if (rep_index_[size_t(t)] >= 0) {
        MixRow& m = mix_[size_t(t)];
        std::fill(m.rep, m.rep + kMixTerms, -1);
        std::fill(m.coef, m.coef + kMixTerms, 0.f);
        m.rep[0] = rep_index_[size_t(t)];
        m.coef[0] = 1.f;
        ++before;
      } else {
        mix_[size_t(t)] = lstsq_mix(reps_z_.data(), before, d_, z->row(t));
      }
    }
  }

  // The bias: log n_s(t) of the representatives (proportional), stated by the keys' representatives
  // and the parents; expanded by dense_bias() or on the device.
  if (o.proportional) {
    key_rep_token_.resize(key_rows_.size());
    for (size_t j = 0; j < key_rows_.size(); ++j) {
      const int32_t u = query_tokens_[size_t(key_rows_[j])];
      key_rep_token_[j] = rep_index_[size_t(u)] >= 0 ? u : -1;
    }
    parent_ = sel.parent;
    log_n_.resize(size_t(T + 1));
    for (int64_t k = 1; k <= T; ++k) log_n_[size_t(k)] = log_count(k);
  }
  if (window_) {
    // The window is the attention's mask (ops::AttentionArgs::window), by position: with contiguous
    // positions (pos[t] = pos[0] + t, which the ring's slots u mod (W-1) assume too), pos[t] - pos[u]
    // < W is SPEC 6's t - u < W.
    for (int64_t t = 1; t < T; ++t)
      CASCADE_CHECK(pos[t] == pos[0] + t, "ADA plan: --ada-window needs contiguous prefill positions (token ", t,
                    " at ", pos[t], " after ", pos[0], ")");
    key_pinned_.resize(size_t(nk()));
    for (int64_t j = 0; j < nk(); ++j) {
      const int32_t u = query_tokens_[size_t(key_rows_[size_t(j)])];
      key_pinned_[size_t(j)] = persistent_index_[size_t(u)] >= 0 ? 1 : 0;
    }
    build_window_cache(T, pos);
  } else {
    cache_pos_ = key_pos_;
  }
}

void AdaPlan::bias_rows(int64_t first, int64_t count, float* out) const {
  CASCADE_CHECK(o_.proportional, "ADA plan: a bias without --proportional");
  const select::ChildCounts cc(parent_);
  const int64_t nk = int64_t(key_rows_.size());
  std::fill(out, out + count * nk, 0.f);
  for (int64_t i = 0; i < count; ++i) {
    const int32_t t = query_tokens_[size_t(first + i)];
    for (int64_t j = 0; j < nk; ++j) {
      const int32_t u = query_tokens_[size_t(key_rows_[size_t(j)])];
      if (u > t) break;  // keys are in position order; later ones are masked by position
      if (key_rep_token_[size_t(j)] >= 0) out[i * nk + j] = log_n_[size_t(cc.n(u, t))];
    }
  }
}

void AdaPlan::build_window_cache(int64_t T, const int64_t* pos) {
  const int64_t ring = o_.ring();
  cache_rows_.assign(size_t(ring), 0);
  cache_pos_.assign(size_t(ring), kHiddenPos);
  for (int64_t u = std::max<int64_t>(0, T - ring); u < T; ++u)
    if (persistent_index_[size_t(u)] < 0) {
      cache_rows_[size_t(u % ring)] = int32_t(u);
      cache_pos_[size_t(u % ring)] = pos[u];
    }
  for (int64_t u = 0; u < T; ++u)
    if (persistent_index_[size_t(u)] >= 0) {
      cache_rows_.push_back(int32_t(u));
      cache_pos_.push_back(pos[u]);
    }
}

void AdaPlan::end_prefill() {
  query_tokens_ = {};
  key_rows_ = {};
  cache_rows_ = {};
  query_pos_ = {};
  key_pos_ = {};
  copy_from_ = {};
  mix_ = {};
  own_key_ = {};
  key_pinned_ = {};
  key_rep_token_ = {};
  parent_ = {};
  log_n_ = {};
}

AdaPlan::Step AdaPlan::decode(const select::IncrementalSelector::Step& st, int64_t p, const double* z) {
  const bool all = o_.queries == AdaQueries::all;
  if (ring_update_.first >= 0) cache_pos_[size_t(ring_update_.first)] = ring_update_.second;
  ring_update_ = {-1, 0};
  const int64_t t = T_++;
  const bool persistent = st.is_rep || t < o_.sinks;
  Step s;
  if (!all && !st.is_rep) {  // from the representatives before t (all of them so far)
    if (o_.reconstruct == AdaReconstruct::copy) {
      s.copy_from = rep_index_[size_t(st.parent)];
    } else {
      CASCADE_CHECK(z != nullptr, "ADA plan: lstsq decoding needs the token's features");
      s.mix = lstsq_mix(reps_z_.data(), r(), d_, z);
    }
  }
  if (st.is_rep) {
    rep_index_.push_back(int32_t(reps_.size()));
    reps_.push_back(int32_t(t));
    if (mixes()) {
      CASCADE_CHECK(z != nullptr, "ADA plan: lstsq decoding needs the token's features");
      reps_z_.insert(reps_z_.end(), z, z + d_);
    }
  } else {
    rep_index_.push_back(-1);
    ++persistent_count_[size_t(persistent_index_[size_t(st.parent)])];
  }
  persistent_index_.push_back(persistent ? int32_t(persistent_count_.size()) : -1);
  if (persistent) {
    persistent_count_.push_back(1);
    cache_pos_.push_back(p);
  }
  s.append = persistent;
  s.attend = st.is_rep || all;
  s.own_key = all && !persistent;
  if (window_) {
    s.ring_slot = int32_t(t % o_.ring());
    s.ring_write = !persistent;
    ring_update_ = {s.ring_slot, persistent ? kHiddenPos : p};  // after this token's attention
  }
  if (o_.proportional && s.attend) {
    s.bias.assign(size_t(o_.ring()), 0.f);
    for (int32_t n : persistent_count_) s.bias.push_back(log_count(n));
  }
  return s;
}

void extend_selection(select::Selection& sel, const select::IncrementalSelector::Step& st) {
  if (st.is_rep) sel.reps.push_back(int32_t(sel.parent.size()));
  sel.parent.push_back(st.parent);
}

}  // namespace cascade
