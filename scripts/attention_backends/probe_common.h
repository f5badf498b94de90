// What the attention-library probes (cudnn_sdpa_bench.cc, flashinfer_sdpa_bench.cu) share: the shape
// grid and its parsing, random 16-bit inputs in the engine's row layout (Q [T, heads * hd], K and V
// [T, kv_heads * hd]), the accuracy check against a float64 statement of causal attention on the
// host, the timing (median of 20 launches after 3 warm-ups, CUDA events) and the JSON line printed.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace probe {

[[noreturn]] inline void die(const std::string& what) {
  std::fprintf(stderr, "attention probe: %s\n", what.c_str());
  std::exit(1);
}

inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) die(std::string(what) + ": " + cudaGetErrorString(e));
}

struct Shape {
  int64_t T, heads, kv_heads, hd;
  bool bf16;
  int64_t ldq() const { return heads * hd; }
  int64_t ldkv() const { return kv_heads * hd; }
};

// Arguments T,heads,kv_heads,head_dim,bf16|f16 ...; none: model width 4096, GQA 4:1, head 64/128/256,
// both dtypes, T = 2048, 8192, 32768 (the grid of bench/attention_cuda_bench's BM_attention_grid).
inline std::vector<Shape> parse_shapes(int argc, char** argv) {
  std::vector<Shape> shapes;
  for (int i = 1; i < argc; ++i) {
    long long T, h, kh, hd;
    char dt[8] = {};
    if (std::sscanf(argv[i], "%lld,%lld,%lld,%lld,%7s", &T, &h, &kh, &hd, dt) != 5 || kh < 1 || h % kh != 0)
      die(std::string("bad shape '") + argv[i] + "' (want T,heads,kv_heads,head_dim,bf16|f16)");
    shapes.push_back({T, h, kh, hd, std::string(dt) == "bf16"});
  }
  if (shapes.empty())
    for (int64_t T : {2048, 8192, 32768})
      for (int64_t hd : {64, 128, 256})
        for (bool bf16 : {true, false}) shapes.push_back({T, 4096 / hd, 4096 / hd / 4, hd, bf16});
  return shapes;
}

inline float to_float(uint16_t bits, bool bf16) {
  if (bf16) {
    __nv_bfloat16_raw r;
    r.x = bits;
    return __bfloat162float(__nv_bfloat16(r));
  }
  __half_raw r;
  r.x = bits;
  return __half2float(__half(r));
}

inline uint16_t from_float(float x, bool bf16) {
  if (bf16) return __nv_bfloat16_raw(__float2bfloat16(x)).x;
  return __half_raw(__float2half(x)).x;
}

// Host inputs (standard normal values rounded to the dtype) and their device copies, plus the output.
struct Problem {
  Shape s;
  std::vector<uint16_t> q, k, v;
  void *dq = nullptr, *dk = nullptr, *dv = nullptr, *dout = nullptr;

  explicit Problem(const Shape& shape) : s(shape) {
    std::mt19937 rng(0);
    std::normal_distribution<float> n01(0.f, 1.f);
    auto draw = [&](int64_t n) {
      std::vector<uint16_t> x(static_cast<size_t>(n));
      for (auto& b : x) b = from_float(n01(rng), s.bf16);
      return x;
    };
    q = draw(s.T * s.ldq());
    k = draw(s.T * s.ldkv());
    v = draw(s.T * s.ldkv());
    dq = upload(q);
    dk = upload(k);
    dv = upload(v);
    check(cudaMalloc(&dout, q.size() * 2), "cudaMalloc");
  }
  ~Problem() { cudaFree(dq), cudaFree(dk), cudaFree(dv), cudaFree(dout); }
  Problem(const Problem&) = delete;
  Problem& operator=(const Problem&) = delete;

  static void* upload(const std::vector<uint16_t>& h) {
    void* d = nullptr;
    check(cudaMalloc(&d, h.size() * 2), "cudaMalloc");
    check(cudaMemcpy(d, h.data(), h.size() * 2, cudaMemcpyHostToDevice), "upload");
    return d;
  }

  // Max |out - reference| / max |reference| over the first min(64, T) queries of every head (causal:
  // they see only the first keys), the reference in float64 from the same rounded inputs.
  double relative_error(float scale) const {
    const int64_t rows = std::min<int64_t>(64, s.T), group = s.heads / s.kv_heads;
    std::vector<uint16_t> o(q.size());
    check(cudaMemcpy(o.data(), dout, o.size() * 2, cudaMemcpyDeviceToHost), "download");
    double worst = 0, top = 0;
    std::vector<double> w;
    for (int64_t h = 0; h < s.heads; ++h) {
      const int64_t kh = h / group;
      for (int64_t i = 0; i < rows; ++i) {
        w.assign(size_t(i + 1), 0);
        double m = -INFINITY;
        for (int64_t j = 0; j <= i; ++j) {
          double dot = 0;
          for (int64_t c = 0; c < s.hd; ++c)
            dot += double(to_float(q[size_t(i * s.ldq() + h * s.hd + c)], s.bf16)) *
                   double(to_float(k[size_t(j * s.ldkv() + kh * s.hd + c)], s.bf16));
          w[size_t(j)] = dot * scale;
          m = std::max(m, w[size_t(j)]);
        }
        double sum = 0;
        for (auto& x : w) sum += (x = std::exp(x - m));
        for (int64_t c = 0; c < s.hd; ++c) {
          double ref = 0;
          for (int64_t j = 0; j <= i; ++j)
            ref += w[size_t(j)] * double(to_float(v[size_t(j * s.ldkv() + kh * s.hd + c)], s.bf16));
          ref /= sum;
          worst = std::max(worst, std::fabs(double(to_float(o[size_t(i * s.ldq() + h * s.hd + c)], s.bf16)) - ref));
          top = std::max(top, std::fabs(ref));
        }
      }
    }
    return worst / std::max(top, 1e-30);
  }
};

// Median CUDA-event time of launch() in ms.
template <typename F>
double median_ms(F launch, cudaStream_t stream) {
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  for (int i = 0; i < 3; ++i) launch();
  std::vector<float> ms;
  for (int i = 0; i < 20; ++i) {
    cudaEventRecord(e0, stream);
    launch();
    cudaEventRecord(e1, stream);
    cudaEventSynchronize(e1);
    float m = 0;
    cudaEventElapsedTime(&m, e0, e1);
    ms.push_back(m);
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// One JSON line: rate of the causal work (QK^T and PV over the T^2 / 2 visible pairs, 2 FLOPs a
// multiply-add); ok when the 16-bit output is within 2^-6 of the reference's scale.
inline void print_row(const char* backend, const Shape& s, double ms, double err) {
  const double tflops = 2.0 * double(s.T) * double(s.T) * double(s.heads * s.hd) / (ms * 1e-3) / 1e12;
  std::printf(
      "{\"backend\": \"%s\", \"T\": %lld, \"heads\": %lld, \"kv_heads\": %lld, \"head_dim\": %lld, "
      "\"dtype\": \"%s\", \"median_ms\": %.4f, \"tflops\": %.1f, \"rel_error\": %.3g, \"ok\": %s}\n",
      backend, (long long)s.T, (long long)s.heads, (long long)s.kv_heads, (long long)s.hd, s.bf16 ? "bf16" : "f16",
      ms, tflops, err, err < 0x1.0p-6 ? "true" : "false");
  std::fflush(stdout);
}

}  // namespace probe
