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

// z_t: x_t centred over its d features and scaled to unit length (0 for a constant row).
std::vector<std::vector<double>> pearson(const std::vector<float>& x, int64_t T, int64_t d) {
  std::vector<std::vector<double>> z(static_cast<size_t>(T), std::vector<double>(static_cast<size_t>(d)));
  for (int64_t t = 0; t < T; ++t) {
    double mean = 0, norm = 0;
    for (int64_t i = 0; i < d; ++i) mean += x[size_t(t * d + i)];
    mean /= double(d);
    for (int64_t i = 0; i < d; ++i) norm += (x[size_t(t * d + i)] - mean) * (x[size_t(t * d + i)] - mean);
    for (int64_t i = 0; i < d; ++i) z[size_t(t)][size_t(i)] = norm > 0 ? (x[size_t(t * d + i)] - mean) / std::sqrt(norm) : 0.0;
  }
  return z;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// SPEC 6 lstsq: the (representative, coefficient) pairs of non-representative t: the at most 8
// earlier representatives of largest rho (ties: the smaller), c = argmin ||z_t - sum c_s z_s|| by
// modified Gram-Schmidt in that order, a column whose residual has squared norm <= kRankTol times
// its own dropped (coefficient 0, the rule the engine states for its Cholesky).
std::vector<std::pair<int64_t, double>> lstsq_terms(const std::vector<std::vector<double>>& z, const select::Selection& sel,
                                                    int64_t t) {
  std::vector<int64_t> cand;
  for (int32_t s : sel.reps)
    if (s < t) cand.push_back(s);
  std::stable_sort(cand.begin(), cand.end(),
                   [&](int64_t a, int64_t b) { return dot(z[size_t(t)], z[size_t(a)]) > dot(z[size_t(t)], z[size_t(b)]); });
  cand.resize(std::min<size_t>(cand.size(), 8));
  std::vector<int64_t> kept;
  std::vector<std::vector<double>> qs;  // orthonormal basis of the kept columns
  std::vector<std::vector<double>> R;   // R[a][b] = <q_a, z_{kept b}> (a <= b)
  for (int64_t s : cand) {
    std::vector<double> w = z[size_t(s)];
    std::vector<double> col;
    for (const auto& q : qs) {
      const double c = dot(q, w);
      col.push_back(c);
      for (size_t i = 0; i < w.size(); ++i) w[i] -= c * q[i];
    }
    const double n2 = dot(w, w), v2 = dot(z[size_t(s)], z[size_t(s)]);
    if (!(v2 > 0) || n2 <= 1e-10 * v2) continue;
    for (double& e : w) e /= std::sqrt(n2);
    col.push_back(std::sqrt(n2));
    for (size_t a = 0; a < col.size(); ++a) {
      if (R.size() <= a) R.emplace_back();
      R[a].resize(col.size(), 0.0);
      R[a][col.size() - 1] = col[a];
    }
    qs.push_back(w);
    kept.push_back(s);
  }
  const size_t r = kept.size();
  std::vector<double> c(r);
  for (size_t a = r; a-- > 0;) {
    double y = dot(qs[a], z[size_t(t)]);
    for (size_t b = a + 1; b < r; ++b) y -= R[a][b] * c[b];
    c[a] = y / R[a][a];
  }
  std::vector<std::pair<int64_t, double>> terms;
  for (size_t a = 0; a < r; ++a) terms.push_back({kept[a], c[a]});
  return terms;
}

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
                                    const AdaPlanOptions& o) {
  const AdaQueries queries = o.queries;
  const bool proportional = o.proportional;
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
  const bool lstsq = o.reconstruct == AdaReconstruct::lstsq;
  const std::vector<std::vector<double>> z = lstsq ? pearson(x, T, d) : std::vector<std::vector<double>>{};
  for (int64_t t = 0; t < T; ++t) {
    std::vector<double> y;
    if (queries == AdaQueries::reps && !is_rep(t) && !lstsq) {  // the parent's output (computed already: parent < t)
      const int64_t p = sel.parent[size_t(t)];
      std::copy(out.begin() + p * d, out.begin() + (p + 1) * d, out.begin() + t * d);
      continue;
    }
    if (queries == AdaQueries::reps && !is_rep(t)) {  // lstsq: earlier representatives' outputs, mixed
      for (const auto& [s, c] : lstsq_terms(z, sel, t))
        for (int64_t i = 0; i < d; ++i) out[size_t(t * d + i)] += c * out[size_t(s * d + i)];
      continue;
    }
    std::vector<Key> keys;
    for (int64_t s = 0; s <= t; ++s) {
      const bool extra = s < o.sinks || t - s < o.window;  // a sink or inside the window (SPEC 6)
      if (is_rep(s))
        keys.push_back({s, proportional ? std::log(double(n_s(s, t))) : 0.0});
      else if (s != t && extra)
        keys.push_back({s, 0.0});
    }
    if (!is_rep(t)) keys.push_back({t, 0.0});  // queries=all: a non-representative also sees itself
    y = attend(t, keys);
    std::copy(y.begin(), y.end(), out.begin() + t * d);
  }
  return out;
}

}  // namespace cascade::test
