// CPU attention: per head, logits by one sgemm over a block of queries, masked softmax in double,
// then one sgemm with V. Query blocks bound the scratch to block x nk floats at long contexts.
// Visibility is decided by position, window and bias mask, never by the logits' values: logits that
// overflow to -inf or are NaN (a checkpoint with huge, Inf or NaN weights) give NaN outputs, as in
// PyTorch. A query with no visible key is an engine bug, reported after the parallel loop because
// an exception must not leave an OpenMP region.
#include "ops/attention.h"

#include <cblas.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "core/error.h"

namespace cascade::ops {

AttentionKernel parse_attention_kernel(const std::string& name) {
  if (name == "auto") return AttentionKernel::automatic;
  if (name == "cascade") return AttentionKernel::cascade;
  if (name == "cudnn") return AttentionKernel::cudnn;
  fail("--attention-kernel: ", name, " not in {auto,cascade,cudnn}");
}

const char* attention_kernel_name(AttentionKernel k) {
  switch (k) {
    case AttentionKernel::cascade: return "cascade";
    case AttentionKernel::cudnn: return "cudnn";
    default: return "auto";
  }
}

void attention(const AttentionArgs& a) {
  if (a.dtype != DType::F32) throw std::invalid_argument("ops::attention: the CPU computes in float32 only");
  const float *q = static_cast<const float*>(a.q), *k = static_cast<const float*>(a.k), *v = static_cast<const float*>(a.v);
  const float *own_k = static_cast<const float*>(a.own_k), *own_v = static_cast<const float*>(a.own_v);
  float* out = static_cast<float*>(a.out);
  constexpr int64_t kBlock = 512;
  const int64_t group = a.heads / a.kv_heads;
  const int64_t hd = a.head_dim;
  std::vector<float> s(static_cast<size_t>(std::min(kBlock, a.nq) * std::max<int64_t>(a.nk, 1)));
  std::vector<float> own_p(static_cast<size_t>(std::min(kBlock, a.nq)));  // softmax weight of the private key
  for (int64_t h = 0; h < a.heads; ++h) {
    const int64_t kh = h / group;
    for (int64_t q0 = 0; q0 < a.nq; q0 += kBlock) {
      const int64_t nb = std::min(kBlock, a.nq - q0);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(nb), int(a.nk), int(hd), a.scale,
                  q + q0 * a.ldq + h * hd, int(a.ldq), k + kh * hd, int(a.ldkv), 0.f, s.data(), int(a.nk));
      bool blind = false;  // some query saw no key
#pragma omp parallel for if (nb * a.nk > 16384) reduction(|| : blind)
      for (int64_t i = 0; i < nb; ++i) {
        float* row = s.data() + i * a.nk;
        const int64_t qp = a.q_pos[q0 + i];
        const float* bias = a.bias ? a.bias + (q0 + i) * a.ldbias : nullptr;
        constexpr float kHidden = -std::numeric_limits<float>::infinity();
        float mx = kHidden;
        bool sees = false;
        for (int64_t j = 0; j < a.nk; ++j) {
          const bool visible = a.k_pos[j] <= qp && !(bias && bias[j] == kHidden) &&
                               (a.window <= 0 || qp - a.k_pos[j] < a.window || (a.key_pinned && a.key_pinned[j]));
          const float x = visible ? row[j] + (bias ? bias[j] : 0.f) : kHidden;
          row[j] = x;
          mx = std::max(mx, x);
          sees |= visible;
        }
        const bool own = a.own_mask && a.own_mask[q0 + i];
        float own_logit = 0;
        if (own) {
          const float* qi = q + (q0 + i) * a.ldq + h * hd;
          const float* ki = own_k + (q0 + i) * a.ldown + kh * hd;
          double dot = 0;
          for (int64_t c = 0; c < hd; ++c) dot += double(qi[c]) * ki[c];
          own_logit = float(dot) * a.scale;
          mx = std::max(mx, own_logit);
          sees = true;
        }
        if (!sees) {
          blind = true;
          continue;
        }
        double sum = 0;
        for (int64_t j = 0; j < a.nk; ++j) {
          const double e = std::exp(double(row[j]) - mx);
          row[j] = float(e);
          sum += e;
        }
        const double own_e = own ? std::exp(double(own_logit) - mx) : 0.0;
        sum += own_e;
        const float inv = float(1.0 / sum);
        for (int64_t j = 0; j < a.nk; ++j) row[j] *= inv;
        own_p[size_t(i)] = float(own_e / sum);
      }
      if (blind) throw std::logic_error("attention: a query sees no key");
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(nb), int(hd), int(a.nk), 1.f, s.data(), int(a.nk),
                  v + kh * hd, int(a.ldkv), 0.f, out + q0 * a.ldo + h * hd, int(a.ldo));
      if (a.own_mask)
        for (int64_t i = 0; i < nb; ++i) {
          if (!a.own_mask[q0 + i]) continue;
          const float* vi = own_v + (q0 + i) * a.ldown + kh * hd;
          float* oi = out + (q0 + i) * a.ldo + h * hd;
          for (int64_t c = 0; c < hd; ++c) oi[c] += own_p[size_t(i)] * vi[c];
        }
    }
  }
}

}  // namespace cascade::ops
