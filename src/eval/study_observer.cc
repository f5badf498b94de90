// The observing layer wraps an exact-attention layer: selections on the prefill's features, then the
// exact layer's own forward, unchanged. Its selection work is not added to the phase times.
#include "eval/study_observer.h"

#include "attention/exact_attention.h"

namespace cascade {

namespace {

class ObservingLayer : public LayerAttention {
 public:
  ObservingLayer(std::unique_ptr<LayerAttention> exact, const AttentionContext& c, const select::Options& o,
                 const ObservingLayer* below)
      : exact_(std::move(exact)), d_(c.spec->d_model), o_(o), below_(below) {}

  void forward(const float* x, int64_t n, const int64_t* pos, float* out) override {
    if (!seen_) {  // the prefill: select on its features
      const select::Features z = select::normalize(x, n, d_, o_.similarity);
      const ObservedSelections* b = below_ ? &below_->sel_ : nullptr;
      sel_.full = select::run_full(z, o_, b ? &b->full : nullptr);
      sel_.cascade = b ? select::run_cascade(z, b->cascade, o_) : sel_.full;
      seen_ = true;
    }
    exact_->forward(x, n, pos, out);
  }
  int64_t cache_bytes() const override { return exact_->cache_bytes(); }
  const ObservedSelections& selections() const { return sel_; }

 private:
  std::unique_ptr<LayerAttention> exact_;
  int64_t d_;
  select::Options o_;
  const ObservingLayer* below_;
  ObservedSelections sel_;
  bool seen_ = false;
};

}  // namespace

ObservingFactory::ObservingFactory(select::Options o) : o_(o) {
  o_.rule = select::Rule::greedy;
  (void)o_.theta();
}

std::vector<std::unique_ptr<LayerAttention>> ObservingFactory::make(const std::vector<AttentionContext>& layers) const {
  auto exact = ExactAttentionFactory().make(layers);
  std::vector<std::unique_ptr<LayerAttention>> out;
  const ObservingLayer* below = nullptr;
  for (size_t i = 0; i < layers.size(); ++i) {
    auto l = std::make_unique<ObservingLayer>(std::move(exact[i]), layers[i], o_, below);
    below = l.get();
    out.push_back(std::move(l));
  }
  return out;
}

const ObservedSelections* observed_selections(const LayerAttention& layer) {
  const auto* o = dynamic_cast<const ObservingLayer*>(&layer);
  return o ? &o->selections() : nullptr;
}

}  // namespace cascade
