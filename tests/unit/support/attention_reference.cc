#include "support/attention_reference.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace cascade::test {

bool attention_sees(const ops::AttentionArgs& a, int64_t i, int64_t j) {
  const int64_t qp = a.q_pos[i], kp = a.k_pos[j];
  if (kp > qp) return false;
  if (a.window <= 0) return true;
  return qp - kp < a.window || (a.key_pinned && a.key_pinned[j] != 0);
}

std::vector<double> attention_reference(const ops::AttentionArgs& a) {
  const float *q = static_cast<const float*>(a.q), *k = static_cast<const float*>(a.k), *v = static_cast<const float*>(a.v);
  const float *own_k = static_cast<const float*>(a.own_k), *own_v = static_cast<const float*>(a.own_v);
  const int64_t group = a.heads / a.kv_heads, hd = a.head_dim, width = a.heads * hd;
  std::vector<double> out(static_cast<size_t>(a.nq * width), 0.0);
  auto dot = [&](const float* x, const float* y) {
    double s = 0;
    for (int64_t c = 0; c < hd; ++c) s += double(x[c]) * y[c];
    return s;
  };
  for (int64_t h = 0; h < a.heads; ++h)
    for (int64_t i = 0; i < a.nq; ++i) {
      const float* qi = q + i * a.ldq + h * hd;
      const int64_t kh = (h / group) * hd;
      // Every seen key's logit (the own key last), then the softmax over them.
      std::vector<double> logit;
      std::vector<const float*> value;
      for (int64_t j = 0; j < a.nk; ++j) {
        if (!attention_sees(a, i, j)) continue;
        logit.push_back(dot(qi, k + j * a.ldkv + kh) * a.scale + (a.bias ? a.bias[i * a.ldbias + j] : 0.0));
        value.push_back(v + j * a.ldkv + kh);
      }
      if (a.own_mask && a.own_mask[i]) {
        logit.push_back(dot(qi, own_k + i * a.ldown + kh) * a.scale);
        value.push_back(own_v + i * a.ldown + kh);
      }
      if (logit.empty()) throw std::logic_error("attention_reference: a query sees no key");
      const double mx = *std::max_element(logit.begin(), logit.end());
      double sum = 0;
      for (double l : logit) sum += std::exp(l - mx);
      for (size_t n = 0; n < logit.size(); ++n) {
        const double p = std::exp(logit[n] - mx) / sum;
        for (int64_t c = 0; c < hd; ++c) out[size_t(i * width + h * hd + c)] += p * value[n][c];
      }
    }
  return out;
}

}  // namespace cascade::test
