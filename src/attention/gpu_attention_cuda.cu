// The steps every GPU attention method shares (attention/gpu_attention.cuh).
#include "attention/gpu_attention.cuh"

#include "attention/projections.h"

namespace cascade {

AttentionTimer::~AttentionTimer() {
  for (cudaEvent_t e : events_) cudaEventDestroy(e);
}

cudaEvent_t AttentionTimer::next() {
  if (used_ == events_.size()) {
    cudaEvent_t e;
    CASCADE_CUDA_CHECK(cudaEventCreate(&e));
    events_.push_back(e);
  }
  return events_[used_++];
}

void AttentionTimer::run(const ops::gpu::AttentionArgs& g, cudaStream_t st) {
  if (!enabled_) {
    ops::gpu::attention(g, st);
    return;
  }
  cudaEvent_t e0 = next(), e1 = next();
  CASCADE_CUDA_CHECK(cudaEventRecord(e0, st));
  ops::gpu::attention(g, st);
  CASCADE_CUDA_CHECK(cudaEventRecord(e1, st));
}

double AttentionTimer::seconds() const {
  double s = 0;
  for (size_t i = 0; i + 1 < used_; i += 2) {
    float ms = 0;
    CASCADE_CUDA_CHECK(cudaEventElapsedTime(&ms, events_[i], events_[i + 1]));
    s += ms * 1e-3;
  }
  return s;
}

void gpu_project_qkv(const GpuAttentionContext& c, const void* x, int64_t rows, const int64_t* pos, void* dst,
                     cudaStream_t st) {
  const ArchSpec& a = *c.spec;
  const int64_t ld = c.qkv_ld();
  ops::gpu::linear(c.dtype, x, c.qkv.in, rows, c.qkv.w, c.qkv.in, c.qkv.out, c.qkv.b, c.dtype, dst, ld, st);
  ops::gpu::rotary(c.dtype, c.rot_style, c.rot_dim, c.inv_freq, dst, rows, ld, a.n_heads, a.head_dim, pos, st);
  ops::gpu::rotary(c.dtype, c.rot_style, c.rot_dim, c.inv_freq, at(dst, c.qd(), c.dtype), rows, ld, a.n_kv_heads,
                   a.head_dim, pos, st);
}

void gpu_project_out(const GpuAttentionContext& c, const void* o, int64_t rows, void* y, cudaStream_t st) {
  ops::gpu::linear(c.dtype, o, c.qd(), rows, c.o.w, c.o.in, c.o.out, c.o.b, c.dtype, y, c.spec->d_model, st);
}

ops::gpu::AttentionArgs gpu_attention_args(const GpuAttentionContext& c, const void* q, int64_t ldq, int64_t nq,
                                           const int64_t* qpos, const void* k, const void* v, int64_t nk,
                                           const int64_t* kpos, void* o) {
  const ArchSpec& a = *c.spec;
  ops::gpu::AttentionArgs g;
  g.dtype = c.dtype;
  g.q = q;
  g.ldq = ldq;
  g.nq = nq;
  g.k = k;
  g.v = v;
  g.ldkv = c.kd();
  g.nk = nk;
  g.heads = a.n_heads;
  g.kv_heads = a.n_kv_heads;
  g.head_dim = a.head_dim;
  g.q_pos = qpos;
  g.k_pos = kpos;
  g.keys_sorted = true;
  g.scale = attention_scale(a);
  g.out = o;
  g.ldo = c.qd();
  return g;
}

}  // namespace cascade
