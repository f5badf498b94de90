#include "support/spec3_oracle.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace cascade::test {

namespace {

// y = W x + b for one row, from the Linear as stored ([out, in], or [in, out] when in_major).
std::vector<double> apply(const Linear& l, const double* x) {
  std::vector<double> y(static_cast<size_t>(l.out));
  for (int64_t o = 0; o < l.out; ++o) {
    double s = l.bias ? double(l.bias[o]) : 0.0;
    for (int64_t i = 0; i < l.in; ++i) s += double(l.in_major ? l.w[i * l.ld + o] : l.w[o * l.ld + i]) * x[i];
    y[size_t(o)] = s;
  }
  return y;
}

// Rotates each head of v [heads * hd] to position p (GPT-J's interleaved pairs or the half split).
void rotate(const ops::Rotary& r, std::vector<double>& v, int64_t heads, int64_t hd, int64_t p) {
  if (!r.enabled()) return;
  const int64_t half = r.dim() / 2;
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < half; ++i) {
      const bool inter = r.style() == RotaryStyle::Interleaved;
      const int64_t ia = h * hd + (inter ? 2 * i : i), ib = h * hd + (inter ? 2 * i + 1 : i + half);
      const double ang = double(p) * double(r.inv_freq()[size_t(i)]);
      const double xa = v[size_t(ia)], xb = v[size_t(ib)];
      v[size_t(ia)] = xa * std::cos(ang) - xb * std::sin(ang);
      v[size_t(ib)] = xb * std::cos(ang) + xa * std::sin(ang);
    }
}

struct Key {
  int64_t token;
  double bias;
};

}  // namespace

std::vector<double> spec3_keys(const ArchSpec& a, const LayerWeights& w, const ops::Rotary& rotary,
                               const std::vector<float>& x, int64_t T) {
  const int64_t d = a.d_model, kd = a.n_kv_heads * a.head_dim;
  std::vector<double> out(size_t(T * kd));
  for (int64_t t = 0; t < T; ++t) {
    const std::vector<double> xt(x.begin() + t * d, x.begin() + (t + 1) * d);
    std::vector<double> k = apply(w.k, xt.data());
    rotate(rotary, k, a.n_kv_heads, a.head_dim, t);
    std::copy(k.begin(), k.end(), out.begin() + t * kd);
  }
  return out;
}

select::Selection every_token(int64_t T) {
  select::Selection s;
  for (int32_t t = 0; t < int32_t(T); ++t) s.reps.push_back(t), s.parent.push_back(t);
  return s;
}

std::vector<double> spec3_attention(const ArchSpec& a, const LayerWeights& w, const ops::Rotary& rotary,
                                    const std::vector<float>& x, int64_t T, const select::Selection& sel,
                                    AdaQueries queries, bool proportional) {
  const int64_t d = a.d_model, H = a.n_heads, Hkv = a.n_kv_heads, hd = a.head_dim;
  std::vector<std::vector<double>> q(static_cast<size_t>(T)), k(static_cast<size_t>(T)), v(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) {
    const std::vector<double> xt(x.begin() + t * d, x.begin() + (t + 1) * d);
    q[size_t(t)] = apply(w.q, xt.data());
    k[size_t(t)] = apply(w.k, xt.data());
    v[size_t(t)] = apply(w.v, xt.data());
    rotate(rotary, q[size_t(t)], H, hd, t);
    rotate(rotary, k[size_t(t)], Hkv, hd, t);
  }
  auto is_rep = [&](int64_t t) { return sel.parent[size_t(t)] == t; };
  // n_s(t): s itself and its children up to t.
  auto n_s = [&](int64_t s, int64_t t) {
    int64_t n = 1;
    for (int64_t c = s + 1; c <= t; ++c) n += sel.parent[size_t(c)] == s ? 1 : 0;
    return n;
  };
  // The attention output of token t's query over the given keys, through the output projection.
  auto attend = [&](int64_t t, const std::vector<Key>& keys) {
    std::vector<double> o(size_t(H * hd), 0.0);
    for (int64_t h = 0; h < H; ++h) {
      const int64_t g = h / (H / Hkv);
      std::vector<double> score(keys.size());
      double mx = -std::numeric_limits<double>::infinity();
      for (size_t j = 0; j < keys.size(); ++j) {
        double s = 0;
        for (int64_t i = 0; i < hd; ++i) s += q[size_t(t)][size_t(h * hd + i)] * k[size_t(keys[j].token)][size_t(g * hd + i)];
        score[j] = s / std::sqrt(double(hd)) + keys[j].bias;
        mx = std::max(mx, score[j]);
      }
      double z = 0;
      for (double& s : score) z += (s = std::exp(s - mx));
      for (size_t j = 0; j < keys.size(); ++j)
        for (int64_t i = 0; i < hd; ++i) o[size_t(h * hd + i)] += score[j] / z * v[size_t(keys[j].token)][size_t(g * hd + i)];
    }
    return apply(w.o, o.data());
  };
  std::vector<double> out(size_t(T * d));
  for (int64_t t = 0; t < T; ++t) {
    std::vector<double> y;
    if (queries == AdaQueries::reps && !is_rep(t)) {  // the parent's output (computed already: parent < t)
      const int64_t p = sel.parent[size_t(t)];
      std::copy(out.begin() + p * d, out.begin() + (p + 1) * d, out.begin() + t * d);
      continue;
    }
    std::vector<Key> keys;
    for (int64_t s = 0; s <= t; ++s)
      if (is_rep(s)) keys.push_back({s, proportional ? std::log(double(n_s(s, t))) : 0.0});
    if (!is_rep(t)) keys.push_back({t, 0.0});  // queries=all: a non-representative also sees itself
    y = attend(t, keys);
    std::copy(y.begin(), y.end(), out.begin() + t * d);
  }
  return out;
}

}  // namespace cascade::test
