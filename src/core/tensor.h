// Tensor: a dense, row-major float32 array on the host, owning its memory or viewing memory kept
// alive by an owner (a memory-mapped checkpoint). Compute on the CPU is float32 throughout; the
// shapes are small vectors so that a [T, d] activation and a [out, in] weight are the same type.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace cascade {

class Tensor {
 public:
  Tensor() = default;
  // A zero-filled tensor that owns its memory.
  static Tensor zeros(std::vector<int64_t> shape);
  // A view of data (not copied); owner keeps that memory alive for the tensor's lifetime.
  static Tensor view(const float* data, std::vector<int64_t> shape, std::shared_ptr<const void> owner);

  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t dim(int i) const { return shape_.at(i < 0 ? shape_.size() + i : i); }
  int ndim() const { return int(shape_.size()); }
  int64_t numel() const;
  bool empty() const { return numel() == 0; }
  std::string shape_str() const;

  float* data();  // throws if the tensor is a read-only view
  const float* data() const { return ptr_; }
  float* row(int64_t i) { return data() + i * dim(-1); }
  const float* row(int64_t i) const { return ptr_ + i * dim(-1); }

  Tensor clone() const;

 private:
  std::vector<int64_t> shape_;
  std::shared_ptr<const void> owner_;
  const float* ptr_ = nullptr;
  bool writable_ = false;
};

}  // namespace cascade
