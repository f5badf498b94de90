// Attention on the GPU (ops::gpu::attention) at the benchmark models' shapes, timed with CUDA events:
// median of 20 launches after warm-up. BM_attention: causal prefill (the tensor-core tile kernel),
// reported as ms and TFLOP/s of the causal work (2 * 2 * T^2 / 2 * heads * head_dim);
// scripts/bench_gpu_prefill.py times PyTorch's SDPA at the same shapes. BM_attention_grid: the grid
// that scripts/attention_backends/ times cuDNN and PyTorch's backends on (model width 4096, GQA 4:1,
// head 64/128/256, T up to 32768), through Cascade's kernel (kernel 0) and through the op's cuDNN
// path (kernel 1: ops/attention_cudnn.h; its plan is built in the warm-up). BM_decode: one query over a
// KV cache (the general kernel split over keys), reported as ms and GB/s of K and V read, against the
// memory bandwidth. Prints a skip line in a CPU-only build or without a GPU.
#include <benchmark/benchmark.h>

#include "benchmark_main.h"
#include "cuda/runtime.h"

#ifdef CASCADE_WITH_CUDA
#include <string>
#include <vector>

#include "cuda_bench_support.h"
#include "cuda/buffer.h"
#include "cuda/context.h"
#include "ops/attention_cudnn.h"
#include "ops/cuda_ops.h"

namespace {

using namespace cascade;

using bench::median_ms;
using bench::random16;

cuda::Buffer<int64_t> iota(int64_t n) {
  std::vector<int64_t> pos(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) pos[size_t(i)] = i;
  return cuda::Buffer<int64_t>::from_host(pos, cuda::context().stream);
}

// Causal prefill of T tokens from one stacked QKV buffer [T, (heads + 2 kv_heads) * hd], as the
// decoder holds it.
void time_prefill(benchmark::State& state, int64_t T, int64_t heads, int64_t kv_heads, int64_t hd, DType t,
                  ops::AttentionKernel kernel = ops::AttentionKernel::cascade) {
  if (!cuda::gpu_available()) {
    state.SkipWithError("no GPU");
    return;
  }
  std::string why;
  if (kernel == ops::AttentionKernel::cudnn && !ops::gpu::cudnn_sdpa::available(&why)) {
    state.SkipWithError(why.c_str());
    return;
  }
  cuda::Context& ctx = cuda::context();
  const int64_t qd = heads * hd, kd = kv_heads * hd, ld = qd + 2 * kd;
  auto qkv = random16(size_t(T * ld));
  cuda::Buffer<uint16_t> out(size_t(T * qd));
  auto dpos = iota(T);
  ops::AttentionArgs a;
  a.dtype = t;
  a.q = qkv.data();
  a.k = qkv.data() + qd;
  a.v = qkv.data() + qd + kd;
  a.ldq = a.ldkv = ld;
  a.nq = a.nk = T;
  a.heads = heads;
  a.kv_heads = kv_heads;
  a.head_dim = hd;
  a.q_pos = a.k_pos = dpos.data();
  a.scale = 0.0625f;
  a.out = out.data();
  a.ldo = qd;
  a.causal_by_index = true;
  a.kernel = kernel;
  const double med = median_ms(state, [&] { ops::gpu::attention(a, ctx.stream); });
  state.counters["TFLOP/s"] = 2.0 * double(T) * double(T) * double(heads * hd) / (med * 1e-3) / 1e12;
}

// {T, heads, head_dim, bf16}, multi-head (kv_heads = heads).
void BM_attention(benchmark::State& state) {
  const int64_t heads = state.range(1);
  time_prefill(state, state.range(0), heads, heads, state.range(2), state.range(3) ? DType::BF16 : DType::F16);
}

// {T, head_dim, bf16, kernel}: heads = 4096 / head_dim, kv_heads = heads / 4; kernel 0 Cascade's, 1 cuDNN's.
void BM_attention_grid(benchmark::State& state) {
  const int64_t hd = state.range(1), heads = 4096 / hd;
  time_prefill(state, state.range(0), heads, heads / 4, hd, state.range(2) ? DType::BF16 : DType::F16,
               state.range(3) ? ops::AttentionKernel::cudnn : ops::AttentionKernel::cascade);
}

// One decoded token (position nk - 1) over nk cached keys, fp16.
void BM_decode(benchmark::State& state) {
  const int64_t nk = state.range(0), heads = state.range(1), kv_heads = state.range(2), hd = state.range(3);
  if (!cuda::gpu_available()) {
    state.SkipWithError("no GPU");
    return;
  }
  cuda::Context& ctx = cuda::context();
  const int64_t qd = heads * hd, kd = kv_heads * hd;
  auto q = random16(size_t(qd)), k = random16(size_t(nk * kd)), v = random16(size_t(nk * kd));
  cuda::Buffer<uint16_t> out{size_t(qd)};
  auto dpos = iota(nk);
  ops::AttentionArgs a;
  a.dtype = DType::F16;
  a.q = q.data();
  a.k = k.data();
  a.v = v.data();
  a.ldq = qd;
  a.ldkv = kd;
  a.nq = 1;
  a.nk = nk;
  a.heads = heads;
  a.kv_heads = kv_heads;
  a.head_dim = hd;
  a.q_pos = dpos.data() + nk - 1;
  a.k_pos = dpos.data();
  a.scale = 0.0625f;
  a.out = out.data();
  a.ldo = qd;
  const double med = median_ms(state, [&] { ops::gpu::attention(a, ctx.stream); });
  state.counters["GB/s"] = 2.0 * double(nk * kd) * 2.0 / (med * 1e-3) / 1e9;
}

// {T, heads, head_dim, bf16}: GPT-2, GPT-J, OPT-6.7B at their benchmark lengths (OPT also at 512 and
// 1024, either side of the kernel's switch to 128-query blocks); Llama-8B's heads at 8192.
BENCHMARK(BM_attention)
    ->Args({1024, 12, 64, 0})
    ->Args({2048, 16, 256, 0})
    ->Args({512, 32, 128, 0})
    ->Args({1024, 32, 128, 0})
    ->Args({2048, 32, 128, 0})
    ->Args({2048, 32, 128, 1})
    ->Args({8192, 32, 128, 1})
    ->UseManualTime()
    ->Iterations(20)
    ->Unit(benchmark::kMillisecond);

BENCHMARK(BM_attention_grid)
    ->ArgsProduct({{2048, 8192, 32768}, {64, 128, 256}, {1, 0}, {0, 1}})
    ->UseManualTime()
    ->Iterations(20)
    ->Unit(benchmark::kMillisecond);

// {keys, heads, kv_heads, head_dim}: GPT-2 at 1024, GPT-J at 1024 and 2048, Llama-8B (GQA 32/8) at
// 8192 and 32768.
BENCHMARK(BM_decode)
    ->Args({1024, 12, 12, 64})
    ->Args({1024, 16, 16, 256})
    ->Args({2048, 16, 16, 256})
    ->Args({8192, 32, 8, 128})
    ->Args({32768, 32, 8, 128})
    ->UseManualTime()
    ->Iterations(20)
    ->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) { return cascade::bench::run_benchmarks("attention_cuda_bench", argc, argv); }
#else
int main(int argc, char** argv) {
  return cascade::bench::run_benchmarks("attention_cuda_bench", argc, argv, cascade::cuda::describe_gpu().c_str());
}
#endif
