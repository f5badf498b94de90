// Widening a typed view to the CPU engine's float32: in place when it already is aligned float32.
#include "io/weights.h"

#include <cstring>

namespace cascade {

int64_t TensorView::numel() const {
  if (empty()) return 0;
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Tensor widen_f32(const TensorView& v) {
  const size_t elem = dtype_size(v.dtype);
  const bool aligned = reinterpret_cast<uintptr_t>(v.data) % elem == 0;
  if (v.dtype == DType::F32 && aligned) return Tensor::view(static_cast<const float*>(v.data), v.shape, v.owner);
  // to_f32 reads whole elements, so an unaligned source is first copied to aligned heap memory.
  std::vector<uint8_t> realigned;
  const void* src = v.data;
  if (!aligned) {
    realigned.resize(v.nbytes());
    std::memcpy(realigned.data(), v.data, realigned.size());
    src = realigned.data();
  }
  Tensor t = Tensor::zeros(v.shape);
  to_f32(v.dtype, src, t.data(), size_t(v.numel()));
  return t;
}

TensorView owned_view(Tensor t) {
  auto held = std::make_shared<const Tensor>(std::move(t));
  return TensorView{DType::F32, held->data(), held->shape(), held, false};
}

}  // namespace cascade
