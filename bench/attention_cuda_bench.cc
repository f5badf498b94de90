// Causal attention on the GPU (ops::gpu::attention, the tensor-core tile kernel) at the benchmark
// models' shapes, timed with CUDA events: median of 20 launches after warm-up, reported as ms and
// TFLOP/s of the causal work (2 * 2 * T^2 / 2 * heads * head_dim). scripts/bench_gpu_prefill.py
// times PyTorch's SDPA at the same shapes. Prints a skip line in a CPU-only build or without a GPU.
#include <benchmark/benchmark.h>

#include <cstdio>

#include "cuda/runtime.h"

#ifdef CASCADE_WITH_CUDA
#include <algorithm>
#include <random>
#include <vector>

#include "cuda/buffer.h"
#include "cuda/context.h"
#include "ops/cuda_ops.h"

namespace {

using namespace cascade;

void BM_attention(benchmark::State& state) {
  const int64_t T = state.range(0), heads = state.range(1), hd = state.range(2);
  const DType t = state.range(3) ? DType::BF16 : DType::F16;
  if (!cuda::gpu_available()) {
    state.SkipWithError("no GPU");
    return;
  }
  cuda::Context& ctx = cuda::context();
  const int64_t qd = heads * hd, ld = 3 * qd;
  cuda::Buffer<uint16_t> qkv(size_t(T * ld)), out(size_t(T * qd));
  std::vector<uint16_t> h(size_t(T * ld));
  std::mt19937 rng(0);
  std::uniform_int_distribution<int> u(0, 0x3bff);  // finite 16-bit values of moderate size
  for (auto& x : h) x = uint16_t(u(rng) & 0x3bff);
  qkv.upload(h, ctx.stream);
  std::vector<int64_t> pos(static_cast<size_t>(T));
  for (int64_t i = 0; i < T; ++i) pos[size_t(i)] = i;
  auto dpos = cuda::Buffer<int64_t>::from_host(pos, ctx.stream);
  ops::gpu::AttentionArgs a;
  a.dtype = t;
  a.q = qkv.data();
  a.k = qkv.data() + qd;
  a.v = qkv.data() + 2 * qd;
  a.ldq = a.ldkv = ld;
  a.nq = a.nk = T;
  a.heads = a.kv_heads = heads;
  a.head_dim = hd;
  a.q_pos = a.k_pos = dpos.data();
  a.scale = 0.0625f;
  a.out = out.data();
  a.ldo = qd;
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  for (int i = 0; i < 3; ++i) ops::gpu::attention(a, ctx.stream);
  std::vector<float> ms;
  for (auto _ : state) {
    cudaEventRecord(e0, ctx.stream);
    ops::gpu::attention(a, ctx.stream);
    cudaEventRecord(e1, ctx.stream);
    cudaEventSynchronize(e1);
    float m = 0;
    cudaEventElapsedTime(&m, e0, e1);
    ms.push_back(m);
    state.SetIterationTime(m / 1e3);
  }
  std::sort(ms.begin(), ms.end());
  const double med = ms[ms.size() / 2];
  state.counters["median_ms"] = med;
  state.counters["TFLOP/s"] = 2.0 * double(T) * double(T) * double(heads * hd) / (med * 1e-3) / 1e12;
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
}

// {T, heads, head_dim, bf16}: GPT-2, GPT-J, OPT-6.7B at their benchmark lengths; Llama-8B's heads at 8192.
BENCHMARK(BM_attention)
    ->Args({1024, 12, 64, 0})
    ->Args({2048, 16, 256, 0})
    ->Args({2048, 32, 128, 0})
    ->Args({2048, 32, 128, 1})
    ->Args({8192, 32, 128, 1})
    ->UseManualTime()
    ->Iterations(20)
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
#else
int main() {
  std::printf("attention_cuda_bench: skipped (%s)\n", cascade::cuda::describe_gpu().c_str());
  return 0;
}
#endif
