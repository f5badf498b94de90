#include "attention/projections.h"

#include <cmath>

#include "ops/linear.h"

namespace cascade {

void project_qkv(const AttentionContext& c, const float* x, int64_t n, const int64_t* pos, float* q, float* k, float* v) {
  const ArchSpec& a = *c.spec;
  const int64_t d = a.d_model, qd = a.n_heads * a.head_dim, kd = a.n_kv_heads * a.head_dim;
  ops::linear(c.w->q, x, n, d, q, qd);
  ops::linear(c.w->k, x, n, d, k, kd);
  ops::linear(c.w->v, x, n, d, v, kd);
  c.rotary->apply(q, n, qd, a.n_heads, a.head_dim, pos);
  c.rotary->apply(k, n, kd, a.n_kv_heads, a.head_dim, pos);
}

void project_keys(const AttentionContext& c, const float* x, int64_t n, const int64_t* pos, float* k) {
  const ArchSpec& a = *c.spec;
  const int64_t kd = a.n_kv_heads * a.head_dim;
  ops::linear(c.w->k, x, n, a.d_model, k, kd);
  c.rotary->apply(k, n, kd, a.n_kv_heads, a.head_dim, pos);
}

void project_out(const AttentionContext& c, const float* attn, int64_t n, float* out) {
  const ArchSpec& a = *c.spec;
  ops::linear(c.w->o, attn, n, a.n_heads * a.head_dim, out, a.d_model);
}

float attention_scale(const ArchSpec& a) { return float(1.0 / std::sqrt(double(a.head_dim))); }

}  // namespace cascade
