// Buffer<T>: an owning, typed cudaMalloc allocation (plain device memory, never managed memory).
// Moves, never copies; upload/download are synchronous on the given stream (default: the context's).
#pragma once
#include <cstddef>
#include <span>
#include <utility>
#include <vector>

#include "cuda/allocate.h"
#include "cuda/check.h"

namespace cascade::cuda {

template <typename T>
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(size_t n) : n_(n) {
    if (n_) p_ = static_cast<T*>(device_malloc(n_ * sizeof(T)));
  }
  static Buffer from_host(std::span<const T> h, cudaStream_t s = nullptr) {
    Buffer b(h.size());
    b.upload(h, s);
    return b;
  }
  ~Buffer() { if (p_) cudaFree(p_); }
  Buffer(Buffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  Buffer& operator=(Buffer&& o) noexcept {
    if (this != &o) {
      if (p_) cudaFree(p_);
      p_ = std::exchange(o.p_, nullptr);
      n_ = std::exchange(o.n_, 0);
    }
    return *this;
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  T* data() { return p_; }
  const T* data() const { return p_; }
  size_t size() const { return n_; }
  size_t bytes() const { return n_ * sizeof(T); }
  // Grows (contents lost) when smaller than n; keeps the allocation otherwise.
  void reserve(size_t n) { if (n > n_) *this = Buffer(n); }

  void upload(std::span<const T> h, cudaStream_t s = nullptr) {
    CASCADE_CHECK(h.size() <= n_, "Buffer::upload: ", h.size(), " elements into ", n_);
    CASCADE_CUDA_CHECK(cudaMemcpyAsync(p_, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice, s));
    CASCADE_CUDA_CHECK(cudaStreamSynchronize(s));
  }
  std::vector<T> download(size_t n, cudaStream_t s = nullptr) const {
    CASCADE_CHECK(n <= n_, "Buffer::download: ", n, " elements from ", n_);
    std::vector<T> h(n);
    CASCADE_CUDA_CHECK(cudaMemcpyAsync(h.data(), p_, n * sizeof(T), cudaMemcpyDeviceToHost, s));
    CASCADE_CUDA_CHECK(cudaStreamSynchronize(s));
    return h;
  }
  std::vector<T> download(cudaStream_t s = nullptr) const { return download(n_, s); }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

}  // namespace cascade::cuda
