// The GPU side of the attention interface (attention/layer_attention.h): what a GpuLayerAttention is
// given by the GPU decoder (model/model_cuda.cu), and the steps every method shares on device
// buffers, the twins of attention/projections.h: Q/K/V with rotary, the output projection, and the
// attention kernel with its timing. CUDA code only.
#pragma once
#include <cstdint>
#include <vector>

#include "arch/arch_spec.h"
#include "attention/layer_attention.h"
#include "core/dtype.h"
#include "cuda/check.h"
#include "ops/cuda_ops.h"

namespace cascade {

// A linear layer's device weight: [out, in] row-major in the compute dtype, bias [out] in the
// compute dtype or null.
struct GpuLinearView {
  const void* w = nullptr;
  const void* b = nullptr;
  int64_t in = 0, out = 0;
};

// One layer's fixed inputs: its weights on the device and the model's shape (one per layer of a
// sequence; the pointers outlive every sequence of the decoder).
struct GpuAttentionContext {
  const ArchSpec* spec = nullptr;
  DType dtype = DType::F32;  // of activations, weights and caches
  int layer = 0;
  GpuLinearView qkv;         // Q, K and V stacked: [H*hd + 2*Hkv*hd, d]
  GpuLinearView o;
  RotaryStyle rot_style = RotaryStyle::None;
  int64_t rot_dim = 0;
  const float* inv_freq = nullptr;  // device [rot_dim / 2]
  const int64_t* iota = nullptr;    // device [max_positions]: 0, 1, 2, ...
  PhaseTimes* times = nullptr;      // the sequence's; selection time is added here
  ops::AttentionKernel attention_kernel = ops::AttentionKernel::automatic;  // the decoder's choice
  int64_t qd() const { return spec->n_heads * spec->head_dim; }
  int64_t kd() const { return spec->n_kv_heads * spec->head_dim; }
  int64_t qkv_ld() const { return qd() + 2 * kd(); }
};

// Device events around attention kernels, read after the forward's final synchronisation (the
// kernels' time in PhaseTimes::attention). Disabled inside a graph capture.
class AttentionTimer {
 public:
  AttentionTimer() = default;
  AttentionTimer(const AttentionTimer&) = delete;
  AttentionTimer& operator=(const AttentionTimer&) = delete;
  ~AttentionTimer();
  void start_pass(bool enabled) { used_ = 0, enabled_ = enabled; }
  void run(const ops::AttentionArgs& g, cudaStream_t st);
  double seconds() const;  // the kernels of the pass so far (synchronise first)

 private:
  cudaEvent_t next();
  std::vector<cudaEvent_t> events_;
  size_t used_ = 0;
  bool enabled_ = false;
};

// One forward pass as a layer sees it: n new tokens continuing the sequence at `start`.
struct GpuPass {
  int64_t n = 0, start = 0;
  const int64_t* pos = nullptr;  // device [n]: start, start + 1, ...
  cudaStream_t st = nullptr;
  void* qkv = nullptr;           // scratch [n, qkv_ld] in the compute dtype
  void* o = nullptr;             // scratch [n, qd]
  AttentionTimer* timer = nullptr;
};

// Element offset into a device buffer of dtype t.
inline void* at(void* base, int64_t elems, DType t) { return static_cast<unsigned char*>(base) + size_t(elems) * dtype_size(t); }
inline const void* at(const void* base, int64_t elems, DType t) {
  return static_cast<const unsigned char*>(base) + size_t(elems) * dtype_size(t);
}

// Q, K, V of `rows` rows of x [rows, d] at device positions pos, rotary applied, into dst
// [rows, qkv_ld] (Q, then K, then V in each row).
void gpu_project_qkv(const GpuAttentionContext& c, const void* x, int64_t rows, const int64_t* pos, void* dst,
                     cudaStream_t st);
// The K columns of `rows` fused Q/K/V rows qkv [rows, qkv_ld] (after rotary) packed into dst [rows, kd],
// in the compute dtype: the keys features (ADA's, ada-kv's).
void gpu_pack_keys(const GpuAttentionContext& c, const void* qkv, int64_t rows, void* dst, cudaStream_t st);
// The output projection of `rows` attention outputs o [rows, qd] into y [rows, d].
void gpu_project_out(const GpuAttentionContext& c, const void* o, int64_t rows, void* y, cudaStream_t st);
// Attention arguments with the model's heads and scale: queries q (row stride ldq) at device
// positions qpos; keys/values k, v [nk, kd] at device positions kpos (sorted); output o [nq, qd].
ops::AttentionArgs gpu_attention_args(const GpuAttentionContext& c, const void* q, int64_t ldq, int64_t nq,
                                           const int64_t* qpos, const void* k, const void* v, int64_t nk,
                                           const int64_t* kpos, void* o);

}  // namespace cascade
