// StoredWeights -> the CPU engine's float32 ModelWeights (arch/weights.h). Widening is per stored
// tensor and memoised by its address, so the views that share a tensor share its one float32 copy.
#include <algorithm>
#include <map>
#include <utility>
#include <vector>

#include "arch/weights.h"

namespace cascade {

namespace {

class Widener {
 public:
  Tensor operator()(const TensorView& v) {
    if (v.empty()) return {};
    const auto key = std::make_pair(v.data, v.shape);
    auto it = done_.find(key);
    if (it == done_.end()) it = done_.emplace(key, widen_f32(v)).first;
    return it->second;
  }

  Linear linear(const StoredLinear& s) {
    Linear l;
    if (!s.present()) return l;
    l.in = s.in;
    l.out = s.out;
    l.in_major = s.in_major;
    const Tensor w = (*this)(s.w), b = (*this)(s.b);
    if (s.block) return gathered(s, w, b, l);
    l.storage = w;
    l.ld = w.dim(1);
    l.w = w.data() + (s.in_major ? s.first : s.first * l.ld);
    if (!b.empty()) {
      l.bias_storage = b;
      l.bias = b.data() + s.first;
    }
    return l;
  }

  Norm norm(const StoredNorm& s) { return Norm{(*this)(s.weight), (*this)(s.bias)}; }

 private:
  // Rows r(j) of a row-major [rows, in] weight gathered into one owned [out, in] matrix (the
  // blocks are not one strided view).
  static Linear gathered(const StoredLinear& s, const Tensor& w, const Tensor& b, Linear l) {
    Tensor pw = Tensor::zeros({s.out, s.in}), pb = Tensor::zeros({s.out});
    for (int64_t j = 0; j < s.out; ++j) {
      const int64_t r = s.source_row(j);
      std::copy(w.row(r), w.row(r) + s.in, pw.row(j));
      if (!b.empty()) pb.data()[j] = b.data()[r];
    }
    l.storage = pw;
    l.w = pw.data();
    l.ld = s.in;
    if (!b.empty()) {
      l.bias_storage = pb;
      l.bias = pb.data();
    }
    return l;
  }

  // By address and shape: an empty tensor may start where another one does.
  std::map<std::pair<const void*, std::vector<int64_t>>, Tensor> done_;
};

}  // namespace

ModelWeights widen_weights(const StoredWeights& s) {
  Widener widen;
  ModelWeights m;
  m.embed = widen(s.embed);
  m.positions = widen(s.positions);
  m.project_in = widen.linear(s.project_in);
  m.project_out = widen.linear(s.project_out);
  for (const StoredLayer& sl : s.layers) {
    LayerWeights l;
    l.norm1 = widen.norm(sl.norm1);
    l.norm2 = widen.norm(sl.norm2);
    l.q = widen.linear(sl.q);
    l.k = widen.linear(sl.k);
    l.v = widen.linear(sl.v);
    l.o = widen.linear(sl.o);
    l.up = widen.linear(sl.up);
    l.gate = widen.linear(sl.gate);
    l.down = widen.linear(sl.down);
    m.layers.push_back(std::move(l));
  }
  m.final_norm = widen.norm(s.final_norm);
  m.head = widen.linear(s.head);
  return m;
}

}  // namespace cascade
