#include "core/tensor.h"

#include <cstring>
#include <sstream>

#include "core/error.h"

namespace cascade {

static int64_t product(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

Tensor Tensor::zeros(std::vector<int64_t> shape) {
  Tensor t;
  auto buf = std::shared_ptr<float[]>(new float[std::max<int64_t>(1, product(shape))]());
  t.ptr_ = buf.get();
  t.owner_ = std::shared_ptr<const void>(buf, buf.get());
  t.shape_ = std::move(shape);
  t.writable_ = true;
  return t;
}

Tensor Tensor::view(const float* data, std::vector<int64_t> shape, std::shared_ptr<const void> owner) {
  Tensor t;
  t.ptr_ = data;
  t.owner_ = std::move(owner);
  t.shape_ = std::move(shape);
  t.writable_ = false;
  return t;
}

int64_t Tensor::numel() const { return shape_.empty() ? 0 : product(shape_); }

std::string Tensor::shape_str() const {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < shape_.size(); ++i) os << (i ? ", " : "") << shape_[i];
  os << "]";
  return os.str();
}

float* Tensor::data() {
  if (!writable_) throw std::logic_error("write access to a read-only tensor view");
  return const_cast<float*>(ptr_);
}

Tensor Tensor::clone() const {
  Tensor t = zeros(shape_);
  if (numel()) std::memcpy(t.data(), ptr_, size_t(numel()) * sizeof(float));
  return t;
}

}  // namespace cascade
