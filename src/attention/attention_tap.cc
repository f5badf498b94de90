#include "attention/attention_tap.h"

namespace cascade {

namespace {

class TapLayer : public LayerAttention {
 public:
  TapLayer(std::unique_ptr<LayerAttention> inner, std::shared_ptr<std::vector<TapRecord>> records, size_t layer)
      : inner_(std::move(inner)), records_(std::move(records)), layer_(layer) {}

  void forward(const float* x, int64_t n, const int64_t* pos, float* out) override {
    inner_->forward(x, n, pos, out);
    TapRecord& r = (*records_)[layer_];
    r.x.insert(r.x.end(), x, x + n * r.d);
    r.out.insert(r.out.end(), out, out + n * r.d);
  }
  int64_t cache_bytes() const override { return inner_->cache_bytes(); }
  const AdaLayerTrace* trace() const override { return inner_->trace(); }

 private:
  std::unique_ptr<LayerAttention> inner_;
  std::shared_ptr<std::vector<TapRecord>> records_;
  size_t layer_;
};

}  // namespace

std::vector<std::unique_ptr<LayerAttention>> AttentionTap::make(const std::vector<AttentionContext>& layers) const {
  records_ = std::make_shared<std::vector<TapRecord>>(layers.size());
  std::vector<std::unique_ptr<LayerAttention>> inner = inner_.make(layers), out;
  for (size_t l = 0; l < layers.size(); ++l) {
    (*records_)[l].d = layers[l].spec->d_model;
    out.push_back(std::make_unique<TapLayer>(std::move(inner[l]), records_, l));
  }
  return out;
}

}  // namespace cascade
