// PoolBytes: stream-ordered device memory (cudaMallocAsync from the device's default pool, which the
// GPU decoder tells to keep what is freed), for the KV caches: a new sequence per prompt then costs no
// cudaMalloc/cudaFree round trip through the driver (cudaFree synchronises the device).
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "cuda/allocate.h"
#include "cuda/check.h"

namespace cascade::cuda {

class PoolBytes {
 public:
  PoolBytes() = default;
  PoolBytes(size_t n, cudaStream_t s) : n_(n), s_(s) {
    if (n_) p_ = pool_malloc(n_, s_);
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
  template <typename T>
  T* as() { return static_cast<T*>(p_); }
  template <typename T>
  const T* as() const { return static_cast<const T*>(p_); }

 private:
  void* p_ = nullptr;
  size_t n_ = 0;
  cudaStream_t s_ = nullptr;
};

// The capacity a growing device array takes when `need` passes `cap`: twice `cap` while the array is
// small (each growth of a decoding cache is a new CUDA graph), a quarter more once it holds
// kQuarterGrowthFrom entries. A KV cache or a selector's rows at 131072 tokens is gigabytes a layer, and a
// doubled capacity on the first decoded token is what runs a long prompt out of memory; a quarter
// costs at most five copies of each entry over the array's life.
inline constexpr int64_t kQuarterGrowthFrom = 4096;
inline int64_t grown_capacity(int64_t cap, int64_t need, int64_t least) {
  return std::max({need, cap + (cap < kQuarterGrowthFrom ? cap : cap / 4), least});
}

}  // namespace cascade::cuda
