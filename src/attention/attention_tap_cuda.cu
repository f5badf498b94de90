// AttentionTap's GPU layers: the inner layer runs, then its input and output rows are downloaded.
#include <vector>

#include "attention/attention_tap.h"
#include "attention/gpu_attention.cuh"
#include "cuda/buffer.h"
#include "ops/cuda_ops.h"

namespace cascade {

namespace {

class TapGpuLayer : public GpuLayerAttention {
 public:
  TapGpuLayer(std::unique_ptr<GpuLayerAttention> inner, std::shared_ptr<std::vector<TapRecord>> records, size_t layer,
              DType t)
      : inner_(std::move(inner)), records_(std::move(records)), layer_(layer), t_(t) {}

  void prepare(const GpuPass& p) override { inner_->prepare(p); }
  void forward(const GpuPass& p, const void* x, void* out) override {
    inner_->forward(p, x, out);
    TapRecord& r = (*records_)[layer_];
    append(r.x, x, p.n * r.d, p.st);
    append(r.out, out, p.n * r.d, p.st);
  }
  int64_t cache_bytes() const override { return inner_->cache_bytes(); }
  const AdaLayerTrace* trace() const override { return inner_->trace(); }

 private:
  // n values of the compute dtype at device src, as float32, appended to dst.
  void append(std::vector<float>& dst, const void* src, int64_t n, cudaStream_t st) {
    f32_.reserve(size_t(n));
    ops::gpu::to_f32(t_, src, f32_.data(), n, st);
    const std::vector<float> h = f32_.download(size_t(n), st);
    dst.insert(dst.end(), h.begin(), h.end());
  }

  std::unique_ptr<GpuLayerAttention> inner_;
  std::shared_ptr<std::vector<TapRecord>> records_;
  size_t layer_;
  DType t_;
  cuda::Buffer<float> f32_;
};

}  // namespace

std::vector<std::unique_ptr<GpuLayerAttention>> AttentionTap::make_gpu(const std::vector<GpuAttentionContext>& layers) const {
  records_ = std::make_shared<std::vector<TapRecord>>(layers.size());
  std::vector<std::unique_ptr<GpuLayerAttention>> inner = inner_.make_gpu(layers), out;
  for (size_t l = 0; l < layers.size(); ++l) {
    (*records_)[l].d = layers[l].spec->d_model;
    out.push_back(std::make_unique<TapGpuLayer>(std::move(inner[l]), records_, l, layers[l].dtype));
  }
  return out;
}

}  // namespace cascade
