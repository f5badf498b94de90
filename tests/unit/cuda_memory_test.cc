// The device allocations behind cuda::Buffer and cuda::PoolBytes (cuda/allocate.h): memory that the
// stream-ordered pool keeps after a free (the GPU decoder tells it to keep everything) still serves a
// later cudaMalloc that cannot fit beside it, and an allocation that cannot fit at all is a
// cascade::Error naming the size asked and the memory free, after which the device still works.
// Skips without a GPU.
#include <gtest/gtest.h>

#include "cuda/runtime.h"

#ifdef CASCADE_WITH_CUDA
#include <cstdint>
#include <cstdio>
#include <string>

#include "core/error.h"
#include "cuda/buffer.h"
#include "cuda/context.h"
#include "cuda/pool_buffer.h"

namespace cascade {
namespace {

class CudaMemory : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda::gpu_available()) GTEST_SKIP() << "no GPU: " << cuda::describe_gpu();
    cuda::context();  // its handles and workspaces are allocated before anything is measured
    int dev = 0;
    ASSERT_EQ(cudaGetDevice(&dev), cudaSuccess);
    ASSERT_EQ(cudaDeviceGetDefaultMemPool(&pool_, dev), cudaSuccess);
    uint64_t keep = ~uint64_t(0);  // the decoder's setting (model_cuda.cu)
    ASSERT_EQ(cudaMemPoolSetAttribute(pool_, cudaMemPoolAttrReleaseThreshold, &keep), cudaSuccess);
  }
  void TearDown() override {
    if (pool_) {
      cudaDeviceSynchronize();
      cudaMemPoolTrimTo(pool_, 0);
    }
  }
  static size_t free_bytes() {
    size_t free = 0, total = 0;
    EXPECT_EQ(cudaMemGetInfo(&free, &total), cudaSuccess);
    return free;
  }
  cudaMemPool_t pool_ = nullptr;
};

TEST_F(CudaMemory, MemoryThePoolKeepsServesCudaMalloc) {
  cudaStream_t s = cuda::context().stream;
  const size_t big = free_bytes() / 5 * 3 / (size_t(2) << 20) * (size_t(2) << 20);  // 60% of what is free
  { cuda::PoolBytes held(big, s); }  // freed into the pool, which keeps it
  ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  // The pool holds the block: what is free now is less than the block, so a cudaMalloc of its size
  // can only succeed once the pool has given it back.
  ASSERT_LT(free_bytes(), big);
  cuda::Buffer<unsigned char> b(big);
  EXPECT_EQ(b.bytes(), big);
}

// What cannot fit: one message with the size asked, for both kinds, and the device usable after.
TEST_F(CudaMemory, TooLargeIsAnErrorNamingTheSize) {
  size_t free = 0, total = 0;
  ASSERT_EQ(cudaMemGetInfo(&free, &total), cudaSuccess);
  const size_t huge = total + (size_t(1) << 30);
  char asked[32];
  std::snprintf(asked, sizeof asked, "%.1f MiB", double(huge) / double(1 << 20));
  try {
    cuda::Buffer<unsigned char> b(huge);
    FAIL() << "a cudaMalloc larger than the device succeeded";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("out of GPU memory: cudaMalloc of " + std::string(asked)), std::string::npos) << m;
    EXPECT_NE(m.find("MiB free of"), std::string::npos) << m;
  }
  try {
    cuda::PoolBytes b(huge, cuda::context().stream);
    FAIL() << "a cudaMallocAsync larger than the device succeeded";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("out of GPU memory: cudaMallocAsync of " + std::string(asked)), std::string::npos) << m;
  }
  cuda::Buffer<float> small(1024);
  EXPECT_EQ(cudaMemset(small.data(), 0, small.bytes()), cudaSuccess);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

}  // namespace
}  // namespace cascade
#endif
