// PoolBytes: stream-ordered device memory (cudaMallocAsync from the device's default pool, which the
// GPU decoder tells to keep what is freed), for the KV caches: a new sequence per prompt then costs no
// cudaMalloc/cudaFree round trip through the driver (cudaFree synchronises the device).
#pragma once
#include <cstddef>
#include <utility>

#include "cuda/check.h"

namespace cascade::cuda {

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
  // Grows (contents lost) when smaller than n bytes, in stream order on s; keeps the allocation otherwise.
  void reserve(size_t n, cudaStream_t s) {
    if (n > n_) *this = PoolBytes(n, s);
  }
  unsigned char* data() { return static_cast<unsigned char*>(p_); }
  const unsigned char* data() const { return static_cast<const unsigned char*>(p_); }
  size_t bytes() const { return n_; }

 private:
  void* p_ = nullptr;
  size_t n_ = 0;
  cudaStream_t s_ = nullptr;
};

}  // namespace cascade::cuda
