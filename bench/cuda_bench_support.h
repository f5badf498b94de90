// What the GPU benchmark programs share (attention_cuda_bench, linear_cuda_bench): a median of CUDA-event
// timings and random 16-bit device data. Included inside their CASCADE_WITH_CUDA part.
#pragma once
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "cuda/buffer.h"
#include "cuda/context.h"

namespace cascade::bench {

// Median CUDA-event time of run() over the benchmark's iterations (after 3 warm-up calls), in ms; also
// the benchmark's manual time and its median_ms counter.
template <typename F>
double median_ms(benchmark::State& state, F run) {
  cuda::Context& ctx = cuda::context();
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  for (int i = 0; i < 3; ++i) run();
  std::vector<float> ms;
  for (auto _ : state) {
    cudaEventRecord(e0, ctx.stream);
    run();
    cudaEventRecord(e1, ctx.stream);
    cudaEventSynchronize(e1);
    float m = 0;
    cudaEventElapsedTime(&m, e0, e1);
    ms.push_back(m);
    state.SetIterationTime(m / 1e3);
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  std::sort(ms.begin(), ms.end());
  state.counters["median_ms"] = ms[ms.size() / 2];
  return ms[ms.size() / 2];
}

// How many copies of a read of `bytes` a timing rotates over so that they hold at least 256 MB in all: a
// launch then reads its operand from memory, as in a model's step, not from the previous launch's L2
// lines (50 MB of L2 on an H100 or H200; a decoding step's Q|K|V is 48 MB, its O 32 MB).
inline size_t copies_past_l2(double bytes) { return size_t(double(size_t(256) << 20) / bytes) + 1; }

// Finite 16-bit values of moderate size (fp16 bit patterns below 1; as bf16, positive and below 2^-7).
inline cuda::Buffer<uint16_t> random16(size_t n) {
  std::vector<uint16_t> h(n);
  std::mt19937 rng(0);
  std::uniform_int_distribution<int> u(0, 0x3bff);
  for (auto& x : h) x = uint16_t(u(rng) & 0x3bff);
  return cuda::Buffer<uint16_t>::from_host(h, cuda::context().stream);
}

}  // namespace cascade::bench
