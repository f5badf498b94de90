// Exact attention on the GPU: the twin of exact_attention.cc. K and V of every token in a per-layer
// cache in the compute dtype, written to their rows by position (ops::gpu::scatter_rows reads the
// positions from the device, so a captured decoding step does not depend on its position).
// Capturable: a decoding step (fewer than kDecodeRows queries) attends over the whole cache
// capacity, masked by position, so its arguments do not depend on its start either.
#include <algorithm>

#include "attention/exact_attention.h"
#include "attention/gpu_attention.cuh"
#include "cuda/pool_buffer.h"

namespace cascade {

namespace {

// Queries below this count take the general attention kernel, which skips masked keys' rows (the
// tile kernel reads every row of a tile); for them a step attends over the whole cache.
constexpr int64_t kDecodeRows = ops::gpu::kTileMinQueries;

class ExactGpuLayer : public GpuLayerAttention {
 public:
  explicit ExactGpuLayer(const GpuAttentionContext& c) : c_(c) {}

  void prepare(const GpuPass& p) override {
    const int64_t need = p.start + p.n;
    if (need > cap_) grow(need, p.st);
    len_ = need;
  }

  void forward(const GpuPass& p, const void* x, void* out) override {
    const int64_t qd = c_.qd(), kd = c_.kd(), ld = c_.qkv_ld();
    gpu_project_qkv(c_, x, p.n, p.pos, p.qkv, p.st);
    ops::gpu::scatter_rows(c_.dtype, at(p.qkv, qd, c_.dtype), ld, p.n, kd, p.pos, k_.data(), kd, p.st);
    ops::gpu::scatter_rows(c_.dtype, at(p.qkv, qd + kd, c_.dtype), ld, p.n, kd, p.pos, v_.data(), kd, p.st);
    const int64_t nk = p.n < kDecodeRows ? cap_ : p.start + p.n;
    ops::AttentionArgs g = gpu_attention_args(c_, p.qkv, ld, p.n, p.pos, k_.data(), v_.data(), nk, c_.iota, p.o);
    g.causal_by_index = p.n >= kDecodeRows;  // keys 0 .. start + n - 1, queries the last n of them
    p.timer->run(g, p.st);
    gpu_project_out(c_, p.o, p.n, out, p.st);
  }

  bool capturable(const GpuPass&) const override { return true; }
  void graph_key(GraphKey& key) const override {
    key.shape.push_back(uintptr_t(cap_));
    key.buffers.push_back(reinterpret_cast<uintptr_t>(k_.data()));
    key.buffers.push_back(reinterpret_cast<uintptr_t>(v_.data()));
  }
  int64_t cache_bytes() const override { return 2 * len_ * c_.kd() * int64_t(dtype_size(c_.dtype)); }

 private:
  // Room for `need` rows, keeping the len_ rows written so far.
  void grow(int64_t need, cudaStream_t st) {
    const int64_t cap = std::min(c_.spec->max_positions, cuda::grown_capacity(cap_, need, 256));
    const size_t row = size_t(c_.kd()) * dtype_size(c_.dtype);
    cuda::PoolBytes k(size_t(cap) * row, st), v(size_t(cap) * row, st);
    if (len_) {
      CASCADE_CUDA_CHECK(cudaMemcpyAsync(k.data(), k_.data(), size_t(len_) * row, cudaMemcpyDeviceToDevice, st));
      CASCADE_CUDA_CHECK(cudaMemcpyAsync(v.data(), v_.data(), size_t(len_) * row, cudaMemcpyDeviceToDevice, st));
    }
    k_ = std::move(k);  // the old buffers are freed in stream order, after the copies
    v_ = std::move(v);
    cap_ = cap;
  }

  GpuAttentionContext c_;
  cuda::PoolBytes k_, v_;  // [cap, kv_heads * head_dim]
  int64_t cap_ = 0, len_ = 0;
};

}  // namespace

std::vector<std::unique_ptr<GpuLayerAttention>> ExactAttentionFactory::make_gpu(
    const std::vector<GpuAttentionContext>& layers) const {
  std::vector<std::unique_ptr<GpuLayerAttention>> out;
  for (const auto& c : layers) out.push_back(std::make_unique<ExactGpuLayer>(c));
  return out;
}

}  // namespace cascade
