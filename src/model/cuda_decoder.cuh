// The GPU decoder's types (model/model_cuda.cu: the decoder; attention/ada_attention_cuda.cu: its
// ADA step; the device weights are in model/device_weights.cuh): the stream-ordered KV cache, a sequence's state, the CudaDecoder and
// GpuLayers, the steps of model/residual_wiring.h on device buffers. CUDA code only; internal to those
// two files (everything else reaches the decoder through model/device_decoder.h).
#pragma once
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "arch/arch_spec.h"
#include "attention/projections.h"
#include "core/error.h"
#include "cuda/context.h"
#include "model/device_decoder.h"
#include "model/device_weights.cuh"
#include "model/weights.h"
#include "ops/activation.h"
#include "ops/cuda_ops.h"
#include "ops/rotary.h"
#include "select/gpu_incremental.h"
#include "select/gpu_selection.h"

namespace cascade::cuda_decoder {

// Stream-ordered device memory (cudaMallocAsync from the device's pool, which keeps what is freed:
// see CudaDecoder's constructor), for the KV caches: a new sequence per prompt then costs no
// cudaMalloc/cudaFree round trip through the driver (cudaFree synchronises the device).
class PoolBytes {
 public:
  PoolBytes() = default;
  PoolBytes(size_t n, cudaStream_t s) : n_(n), s_(s) {
    if (n_) CASCADE_CUDA_CHECK(cudaMallocAsync(&p_, n_, s_));
  }
  ~PoolBytes() {
    if (p_) cudaFreeAsync(p_, s_);
  }
  PoolBytes(PoolBytes&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)), s_(o.s_) {}
  PoolBytes& operator=(PoolBytes&& o) noexcept {
    if (this != &o) {
      if (p_) cudaFreeAsync(p_, s_);
      p_ = std::exchange(o.p_, nullptr);
      n_ = std::exchange(o.n_, 0);
      s_ = o.s_;
    }
    return *this;
  }
  unsigned char* data() { return static_cast<unsigned char*>(p_); }

 private:
  void* p_ = nullptr;
  size_t n_ = 0;
  cudaStream_t s_ = nullptr;
};

// A captured forward: the values its kernels' arguments were taken from, and its executable graph.
// A key is captured on its second forward in a row (seen: the last one launched without a graph),
// so a one-off forward (a prompt's prefill) does not pay for a capture it would never replay.
struct GraphSlot {
  std::vector<uintptr_t> key, seen;
  cudaGraphExec_t exec = nullptr;
  GraphSlot() = default;
  GraphSlot(const GraphSlot&) = delete;
  GraphSlot& operator=(const GraphSlot&) = delete;
  ~GraphSlot() {
    if (exec) cudaGraphExecDestroy(exec);
  }
};

// Queries below this count take the general attention kernel, which skips masked keys' rows (the
// tile kernel reads every row of a tile); for them a step attends over the whole cache, masked by
// position, so that its arguments do not depend on its start.
constexpr int64_t kDecodeRows = ops::gpu::kTileMinQueries;

// ADA state of one layer of one sequence (SPEC 3-4): the prefill's selection, the compressed cache
// (K, V of the representatives at their original positions, in the order of their positions) and,
// with queries=reps, the representatives' sub-layer outputs (a later non-representative copies its
// parent's). Decoding decides each new token on the device (select::gpu::DeviceIncremental), whose
// state is the representatives' normalised rows: made from the prefill's features on the first decoded
// token (a prefill-only sequence never pays for it), after which the features are released.
struct AdaGpuLayer {
  select::Selection sel;
  select::gpu::GpuStats stats;
  std::optional<select::gpu::DeviceFeatures> z;  // the prefill's features, until decoding starts
  std::optional<select::gpu::DeviceIncremental> selector;
  std::vector<int32_t> rep_index;  // token -> index among the representatives, or -1
  std::vector<int64_t> rep_pos;    // positions of the representatives (host copy of rep_pos_d)
  std::vector<int32_t> counts;     // proportional: n_s (1 + children so far) per representative
  PoolBytes k, v, out, rep_pos_d;  // [cap, kd], [cap, kd], [cap, d] (compute dtype), [cap] int64
  int64_t r = 0, cap = 0;
};

class CudaSequence : public DeviceSequence {
 public:
  std::vector<PoolBytes> k, v;  // per layer [cap, kv_heads * head_dim] in the compute dtype (exact)
  int64_t cap = 0, len = 0, row_bytes = 0;
  std::optional<AdaOptions> ada;      // ADA instead of exact attention
  std::vector<AdaGpuLayer> ada_layers;
  int64_t cache_bytes() const override {
    if (!ada) return 2 * int64_t(k.size()) * len * row_bytes;
    int64_t b = 0;
    for (const auto& l : ada_layers) b += 2 * l.r * row_bytes;
    return b;
  }
  const select::Selection* ada_selection(int64_t l) const override {
    if (!ada || l < 0 || l >= int64_t(ada_layers.size()) || len == 0) return nullptr;
    return &ada_layers[size_t(l)].sel;
  }
};

template <typename P>
P* at(void* base, int64_t elems, DType t) {
  return reinterpret_cast<P*>(static_cast<unsigned char*>(base) + size_t(elems) * dtype_size(t));
}

class CudaDecoder : public DeviceDecoder {
 public:
  CudaDecoder(const ArchSpec& a, const StoredWeights& w, const ops::Rotary& r, DType t, bool graphs);

  DType dtype() const override { return t_; }

  std::unique_ptr<DeviceSequence> new_sequence(const AdaOptions* ada) const override {
    auto s = std::make_unique<CudaSequence>();
    s->row_bytes = a_.n_kv_heads * a_.head_dim * int64_t(dtype_size(t_));
    if (ada) {
      check_ada_on_gpu(*ada);
      (void)ada->select.theta();  // validates tau
      s->ada = *ada;
      s->ada_layers.resize(size_t(a_.n_layers));
      return s;
    }
    s->k.resize(size_t(a_.n_layers));
    s->v.resize(size_t(a_.n_layers));
    return s;
  }

  Tensor forward(DeviceSequence& base, std::span<const int32_t> tokens, int64_t start, bool last_only) const override;
  std::vector<double> forward_nll(DeviceSequence& base, std::span<const int32_t> tokens, int64_t start,
                                  int64_t first_row) const override;

 private:
  friend struct GpuLayers;
  void reserve_cache(CudaSequence& s, int64_t need, cudaStream_t st) const;
  // The device work of a forward whose ids and positions are uploaded: embeddings, layers, head into
  // logits_. timed: CUDA events around each attention kernel (not inside a graph).
  void device_pass(CudaSequence& s, int64_t n, int64_t start, bool last_only, bool timed) const;
  // The forward up to the logits in logits_ (buffers sized, ids and positions uploaded, the device
  // work with or without a graph); returns whether a graph ran.
  bool run(CudaSequence& s, std::span<const int32_t> tokens, int64_t start, bool last_only) const;
  // After run() and the stream's synchronisation: the attention kernels' time, or NaN under a graph.
  void collect_times(CudaSequence& s, bool graph) const;
  // device_pass through the slot's graph: captured (or the slot's graph updated) when its key differs.
  void graph_pass(CudaSequence& s, int64_t n, int64_t start, bool last_only) const;

  ArchSpec a_;
  DType t_;
  bool graphs_;
  Bytes embed_, positions_;
  DevLinear project_in_, project_out_, head_;
  bool head_tied_ = false;
  std::vector<DevLayer> layers_;
  DevNorm final_norm_;
  cuda::Buffer<float> inv_freq_;
  RotaryStyle rot_style_ = RotaryStyle::None;
  int64_t rot_dim_ = 0;
  cuda::Buffer<int64_t> iota_;
  // Scratch, grown on demand (one forward at a time per model).
  mutable Bytes h_, x_, att_, ff_, qkv_, o_, hid_, hid2_, emb_;
  mutable cuda::Buffer<int32_t> ids_;
  mutable cuda::Buffer<int64_t> pos_;  // the forward's positions, start .. start + n - 1
  mutable GraphSlot decode_graph_, prefill_graph_;
  mutable cuda::Buffer<float> logits_;
  mutable cuda::Buffer<double> nll_;
  // ADA scratch: features in float32 for the selection, gathered rows, index lists.
  mutable cuda::Buffer<float> xf_;
  mutable Bytes xr_;
  mutable cuda::Buffer<int32_t> rep_ids_, copy_ids_;
  mutable cuda::Buffer<uint8_t> own_mask_;  // queries=all: which queries also see their own key
  mutable cuda::Buffer<float> bias_;        // proportional: log n_s per (query, representative)
  // Attention-kernel timing: event pairs recorded during a forward, read after its final sync.
  mutable std::vector<cudaEvent_t> events_;
  mutable size_t events_used_ = 0;
  cudaEvent_t next_event() const {
    if (events_used_ == events_.size()) {
      cudaEvent_t e;
      CASCADE_CUDA_CHECK(cudaEventCreate(&e));
      events_.push_back(e);
    }
    return events_[events_used_++];
  }

 public:
  ~CudaDecoder() override {
    for (cudaEvent_t e : events_) cudaEventDestroy(e);
  }
};

// The steps of residual_layer on device buffers (see model/residual_wiring.h).
struct GpuLayers {
  using Ptr = void*;
  const CudaDecoder& m;
  CudaSequence& s;
  int64_t n, start;
  cudaStream_t st;
  bool timed;  // CUDA events around the attention kernels

  const DevNorm& nw(int64_t l, int which) const { return which == 1 ? m.layers_[size_t(l)].n1 : m.layers_[size_t(l)].n2; }
  void norm(int64_t l, int which, void* src, void* dst) {
    const DevNorm& w = nw(l, which);
    ops::gpu::norm(m.t_, m.a_.norm, src, nullptr, w.g.data(), w.b.size() ? w.b.data() : nullptr, m.a_.norm_eps, n,
                   m.a_.d_model, dst, st);
  }
  void add_norm(int64_t l, int which, void* h, void* add, void* dst) {
    const DevNorm& w = nw(l, which);
    ops::gpu::norm(m.t_, m.a_.norm, h, add, w.g.data(), w.b.size() ? w.b.data() : nullptr, m.a_.norm_eps, n,
                   m.a_.d_model, dst, st);
  }
  void lin(const DevLinear& w, const void* x, void* y, ops::gpu::Epilogue act = ops::gpu::Epilogue::None) {
    ops::gpu::linear(m.t_, x, w.in, n, w.w.data(), w.in, w.out, w.b.size() ? w.b.data() : nullptr, m.t_, y, w.out, st, act);
  }
  void attention(int64_t l, void* x, void* out) {
    if (s.ada) {
      ada_attention(l, x, out);
      return;
    }
    const ArchSpec& a = m.a_;
    const DevLayer& w = m.layers_[size_t(l)];
    const int64_t qd = a.n_heads * a.head_dim, kd = a.n_kv_heads * a.head_dim, ld = qd + 2 * kd;
    lin(w.qkv, x, m.qkv_.data());
    const int64_t* qpos = m.pos_.data();
    ops::gpu::rotary(m.t_, m.rot_style_, m.rot_dim_, m.inv_freq_.data(), m.qkv_.data(), n, ld, a.n_heads, a.head_dim, qpos, st);
    ops::gpu::rotary(m.t_, m.rot_style_, m.rot_dim_, m.inv_freq_.data(), at<void>(m.qkv_.data(), qd, m.t_), n, ld,
                     a.n_kv_heads, a.head_dim, qpos, st);
    ops::gpu::scatter_rows(m.t_, at<void>(m.qkv_.data(), qd, m.t_), ld, n, kd, qpos, s.k[size_t(l)].data(), kd, st);
    ops::gpu::scatter_rows(m.t_, at<void>(m.qkv_.data(), qd + kd, m.t_), ld, n, kd, qpos, s.v[size_t(l)].data(), kd, st);
    ops::gpu::AttentionArgs g;
    g.dtype = m.t_;
    g.q = m.qkv_.data();
    g.ldq = ld;
    g.nq = n;
    g.k = s.k[size_t(l)].data();
    g.v = s.v[size_t(l)].data();
    g.ldkv = kd;
    g.nk = n < kDecodeRows ? s.cap : start + n;
    g.heads = a.n_heads;
    g.kv_heads = a.n_kv_heads;
    g.head_dim = a.head_dim;
    g.q_pos = qpos;
    g.k_pos = m.iota_.data();
    g.keys_sorted = true;
    g.scale = attention_scale(a);
    g.out = m.o_.data();
    g.ldo = qd;
    timed_attention(g);
    lin(w.o, m.o_.data(), out);
  }
  void timed_attention(const ops::gpu::AttentionArgs& g) {
    if (!timed) {
      ops::gpu::attention(g, st);
      return;
    }
    cudaEvent_t e0 = m.next_event(), e1 = m.next_event();
    CASCADE_CUDA_CHECK(cudaEventRecord(e0, st));
    ops::gpu::attention(g, st);
    CASCADE_CUDA_CHECK(cudaEventRecord(e1, st));
  }

  // ---- ADA (SPEC 3, queries=reps or all): attention/ada_attention_cuda.cu ----------------------
  ops::gpu::AttentionArgs ada_args(const AdaGpuLayer& L, const void* q, int64_t ldq, int64_t nq, const int64_t* qpos,
                                   void* o) const;
  void ada_reserve(AdaGpuLayer& L, int64_t need);
  void ada_project(int64_t l, const void* x, int64_t rows, const int64_t* pos);
  void ada_append(AdaGpuLayer& L, int64_t rows);
  void ada_own_keys(ops::gpu::AttentionArgs& g, const uint8_t* mask) const;
  void ada_out(int64_t l, int64_t rows, void* y);
  const float* ada_features_f32(const void* x, int64_t rows);
  void ada_attention(int64_t l, void* x, void* out);
  void ada_prefill(int64_t l, AdaGpuLayer& L, void* x, void* out);
  void ada_decode(int64_t l, AdaGpuLayer& L, const void* x, int64_t i, void* out);
  void mlp(int64_t l, void* x, void* out) {
    const DevLayer& w = m.layers_[size_t(l)];
    const int64_t nf = n * m.a_.d_ff;
    if (ops::is_glu(m.a_.act)) {
      lin(w.up, x, m.hid_.data());
      lin(w.gate, x, m.hid2_.data());
      ops::gpu::activation(m.t_, m.a_.act, m.hid2_.data(), m.hid_.data(), nf, st);
      lin(w.down, m.hid2_.data(), out);
    } else {
      // ReLU (and GELU-tanh in 16-bit dtypes) in the up projection's epilogue, else its own kernel.
      if (ops::gpu::linear_fuses(m.a_.act, m.t_) == ops::gpu::Epilogue::None) {
        lin(w.up, x, m.hid_.data());
        ops::gpu::activation(m.t_, m.a_.act, m.hid_.data(), nullptr, nf, st);
      } else {
        lin(w.up, x, m.hid_.data(), ops::gpu::linear_fuses(m.a_.act, m.t_));
      }
      lin(w.down, m.hid_.data(), out);
    }
  }
  void add(void* h, void* x) { ops::gpu::add(m.t_, h, x, nullptr, n * m.a_.d_model, st); }
  void add2(void* h, void* x, void* x2) { ops::gpu::add(m.t_, h, x, x2, n * m.a_.d_model, st); }
};

}  // namespace cascade::cuda_decoder
