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

void AttentionTimer::run(const ops::AttentionArgs& g, cudaStream_t st) {
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
  ops::gpu::linear({.t = c.dtype, .x = x, .ldx = c.qkv.in, .n = rows, .w = c.qkv.w, .in = c.qkv.in, .out = c.qkv.out,
                    .bias = c.qkv.b, .yt = c.dtype, .y = dst, .ldy = ld},
                   st);
  // The keys' heads follow the queries' in each row (Q | K | V), so one launch rotates both: a decoding
  // step's rotary is a kernel's latency, not its work.
  ops::gpu::rotary({.t = c.dtype, .style = c.rot_style, .rotary_dim = c.rot_dim, .inv_freq = c.inv_freq, .x = dst,
                    .n = rows, .ld = ld, .heads = a.n_heads + a.n_kv_heads, .head_dim = a.head_dim, .pos = pos},
                   st);
}

void gpu_pack_keys(const GpuAttentionContext& c, const void* qkv, int64_t rows, void* dst, cudaStream_t st) {
  const size_t es = dtype_size(c.dtype), kd = size_t(c.kd());
  CASCADE_CUDA_CHECK(cudaMemcpy2DAsync(dst, kd * es, at(qkv, c.qd(), c.dtype), size_t(c.qkv_ld()) * es, kd * es,
                                       size_t(rows), cudaMemcpyDeviceToDevice, st));
}

void gpu_project_out(const GpuAttentionContext& c, const void* o, int64_t rows, void* y, cudaStream_t st) {
  ops::gpu::linear({.t = c.dtype, .x = o, .ldx = c.qd(), .n = rows, .w = c.o.w, .in = c.o.in, .out = c.o.out, .bias = c.o.b,
                    .yt = c.dtype, .y = y, .ldy = c.spec->d_model},
                   st);
}

ops::AttentionArgs gpu_attention_args(const GpuAttentionContext& c, const void* q, int64_t ldq, int64_t nq,
                                           const int64_t* qpos, const void* k, const void* v, int64_t nk,
                                           const int64_t* kpos, void* o) {
  const ArchSpec& a = *c.spec;
  ops::AttentionArgs g;
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
  g.kernel = c.attention_kernel;
  return g;
}

}  // namespace cascade
