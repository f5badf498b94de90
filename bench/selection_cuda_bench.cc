// The selection of one layer on the GPU (BENCHMARKS.md "GPU: selection per layer") at d = 4096 (and
// any other d given), T = 2048, 8192, 32768, full selection against exact cascade, in each Gram
// precision (f64, f32, tf32, f16-certified), against the time of the layer itself. Prints a markdown
// table (and the GEMM rates it measured first); for f16-certified also the fraction of Gram entries
// recomputed in float64, their time, and whether the selection equals f64's (when f64 is measured).
//
// Features: planted clusters, since random features have no near-duplicates (r ~ T). Layer l+1 has
// groups of near-duplicates (centre + 0.2 relative gaussian noise: rho ~ 0.96 inside a group, ~0 across
// groups) whose first members are the representatives, so that r/T is the fraction measured on a real
// model (default: SmolLM2-135M at tau = 0.3, T = 1024, the `cascade` run in RESULTS.md: r/T 0.339,
// additions 0.024 T and removals 0.028 T per layer; `--exact-trajectory`: the same model's selection
// along exact attention, r/T 0.599, additions 0.072 T, removals 0.063 T). Layer l differs from layer
// l+1 exactly there: A tokens that are near-duplicates in layer l are fresh directions in layer l+1
// (additions), R tokens that are fresh in layer l join an earlier group in layer l+1 (removals). The
// cascade starts from the GPU full selection of layer l; the table says whether its set equals the
// full selection's on layer l+1.
//
// Times are CUDA events around each call (normalisation of X, then the selection; the call ends with
// the parents on the host), one warm-up, the median of the repeats. The layer's time is estimated from
// FLOPs, 24 T d^2 (QKV, output and a 4d MLP) + 4 T^2 d (attention scores and values), at the bf16
// rate of a cuBLAS GEMM [T, d] x [d, d] measured in this program.
//
// Usage: selection_cuda_bench [--exact-trajectory] [--reps N] [--T 2048,8192,32768] [--d 4096]
// [--precisions f64,f32,tf32,f16-certified]
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "cuda/runtime.h"
#include "select/gpu_selection.h"
#include "select/selection.h"

#ifdef CASCADE_WITH_CUDA
#include "cuda/context.h"
#endif

namespace {

using namespace cascade;
using namespace cascade::select;

uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
// A standard normal from a key (Box-Muller on two hashed uniforms).
float gauss(uint64_t key) {
  const uint64_t h = mix(key), g = mix(h ^ 0x5bd1e995ull);
  const double u1 = (double(h >> 11) + 0.5) * 0x1.0p-53, u2 = double(g >> 11) * 0x1.0p-53;
  return float(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
}

struct Plan {
  double r_frac, add_frac, rem_frac;
  const char* source;
};

struct Pair {
  std::vector<float> below, above;  // X_l, X_{l+1} [T, d]
};

// group[t] of each token in layer l+1 and layer l; -1 - t marks a fresh direction of its own.
Pair make_pair(int64_t T, int64_t d, const Plan& plan, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> unit;
  const int64_t A = int64_t(std::llround(plan.add_frac * double(T)));
  const int64_t R = int64_t(std::llround(plan.rem_frac * double(T)));
  const double q = std::max(1.0 / double(T), (plan.r_frac * double(T) - double(A)) / double(T));
  std::vector<int64_t> base(static_cast<size_t>(T));
  std::vector<char> first(static_cast<size_t>(T), 0);
  int64_t groups = 0;
  for (int64_t t = 0; t < T; ++t) {
    if (groups == 0 || unit(rng) < q) {
      base[size_t(t)] = groups++;
      first[size_t(t)] = 1;
    } else {
      base[size_t(t)] = int64_t(rng() % uint64_t(groups));
    }
  }
  std::vector<int64_t> members;
  for (int64_t t = 0; t < T; ++t)
    if (!first[size_t(t)]) members.push_back(t);
  std::shuffle(members.begin(), members.end(), rng);
  std::vector<int64_t> g_above = base, g_below = base;
  for (int64_t i = 0; i < std::min<int64_t>(A, int64_t(members.size())); ++i)
    g_above[size_t(members[size_t(i)])] = -1 - members[size_t(i)];
  for (int64_t i = A; i < std::min<int64_t>(A + R, int64_t(members.size())); ++i)
    g_below[size_t(members[size_t(i)])] = -1 - members[size_t(i)];
  Pair p{std::vector<float>(size_t(T * d)), std::vector<float>(size_t(T * d))};
  auto fill = [&](const std::vector<int64_t>& g, std::vector<float>& x) {
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < T; ++t) {
      const int64_t grp = g[size_t(t)];
      float* row = x.data() + t * d;
      for (int64_t i = 0; i < d; ++i) {
        if (grp < 0) {
          row[i] = gauss((seed << 40) ^ (uint64_t(-grp) << 13) ^ uint64_t(i) ^ 0xfeedull << 52);
        } else {
          row[i] = gauss((seed << 40) ^ (uint64_t(grp) << 13) ^ uint64_t(i)) +
                   0.2f * gauss(~((seed << 40) ^ (uint64_t(t) << 13) ^ uint64_t(i)));
        }
      }
    }
  };
  fill(g_above, p.above);
  fill(g_below, p.below);
  return p;
}

#ifdef CASCADE_WITH_CUDA
// TFLOP/s of C[m, n] = A[m, k] B[k, n] in cuBLAS: f64, f32 (pedantic), tf32, bf16 (f32 accumulate).
enum class GemmKind { f64, f32, tf32, bf16 };
// tn: C^T = A B^T with both operands K-major (the Gram's layout: cublas op T on the first operand).
double gemm_tflops(GemmKind kind, int m, int n, int k, int reps, bool tn = false) {
  auto& ctx = cuda::context();
  const size_t es = kind == GemmKind::f64 ? 8 : kind == GemmKind::bf16 ? 2 : 4;
  std::vector<unsigned char> host(std::max(size_t(m) * k, size_t(k) * n) * es);
  for (size_t i = 0; i < host.size() / es; ++i) {
    const float v = gauss(i * 7 + 1) * 0.1f;
    if (kind == GemmKind::f64) {
      const double dv = v;
      std::memcpy(host.data() + i * 8, &dv, 8);
    } else if (kind == GemmKind::bf16) {
      uint32_t b;
      std::memcpy(&b, &v, 4);
      const uint16_t h = uint16_t(b >> 16);
      std::memcpy(host.data() + i * 2, &h, 2);
    } else {
      std::memcpy(host.data() + i * 4, &v, 4);
    }
  }
  const int ldc = tn ? (n + 31) / 32 * 32 : n;  // the Gram's padded panel
  cuda::Buffer<unsigned char> A(size_t(m) * k * es), B(size_t(k) * n * es),
      C(size_t(m) * ldc * (es == 8 ? 8 : 4));
  A.upload(std::span<const unsigned char>(host.data(), A.size()), ctx.stream);
  B.upload(std::span<const unsigned char>(host.data(), B.size()), ctx.stream);
  auto run = [&] {
    if (kind == GemmKind::f64) {
      const double one = 1, zero = 0;
      CASCADE_CUBLAS_CHECK(cublasDgemm(ctx.blas, tn ? CUBLAS_OP_T : CUBLAS_OP_N, CUBLAS_OP_N, n, m, k, &one,
                                       reinterpret_cast<const double*>(B.data()), tn ? k : n,
                                       reinterpret_cast<const double*>(A.data()), k, &zero,
                                       reinterpret_cast<double*>(C.data()), ldc));
      return;
    }
    const float one = 1, zero = 0;
    const cudaDataType_t t = kind == GemmKind::bf16 ? CUDA_R_16BF : CUDA_R_32F;
    const cublasComputeType_t ct = kind == GemmKind::f32    ? CUBLAS_COMPUTE_32F_PEDANTIC
                                   : kind == GemmKind::tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                            : CUBLAS_COMPUTE_32F;
    CASCADE_CUBLAS_CHECK(cublasGemmEx(ctx.blas, tn ? CUBLAS_OP_T : CUBLAS_OP_N, CUBLAS_OP_N, n, m, k, &one,
                                      B.data(), t, tn ? k : n, A.data(), t, k, &zero, C.data(), CUDA_R_32F,
                                      ldc, ct, CUBLAS_GEMM_DEFAULT));
  };
  cudaEvent_t a, b;
  CASCADE_CUDA_CHECK(cudaEventCreate(&a));
  CASCADE_CUDA_CHECK(cudaEventCreate(&b));
  run();
  run();
  std::vector<float> ms;
  for (int i = 0; i < reps; ++i) {
    CASCADE_CUDA_CHECK(cudaEventRecord(a, ctx.stream));
    run();
    CASCADE_CUDA_CHECK(cudaEventRecord(b, ctx.stream));
    CASCADE_CUDA_CHECK(cudaEventSynchronize(b));
    float x = 0;
    CASCADE_CUDA_CHECK(cudaEventElapsedTime(&x, a, b));
    ms.push_back(x);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(ms.begin(), ms.end());
  return 2.0 * m * n * double(k) / (double(ms[ms.size() / 2]) * 1e-3) / 1e12;
}
#endif

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::vector<int64_t> parse_list(const std::string& s) {
  std::vector<int64_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::stoll(item));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Plan plan{0.339, 0.0238, 0.0278, "SmolLM2-135M, tau 0.3, T 1024, cascade run (RESULTS.md)"};
  int reps = 5;
  std::vector<int64_t> Ts = {2048, 8192, 32768}, Ds = {4096};
  std::vector<gpu::Precision> precs = {gpu::Precision::f64, gpu::Precision::f32, gpu::Precision::tf32};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--exact-trajectory")
      plan = {0.599, 0.0724, 0.063, "SmolLM2-135M, tau 0.3, T 1024, exact trajectory"};
    else if (a == "--reps" && i + 1 < argc)
      reps = std::atoi(argv[++i]);
    else if (a == "--T" && i + 1 < argc)
      Ts = parse_list(argv[++i]);
    else if (a == "--d" && i + 1 < argc)
      Ds = parse_list(argv[++i]);
    else if (a == "--precisions" && i + 1 < argc) {
      precs.clear();
      std::stringstream ss(argv[++i]);
      std::string p;
      while (std::getline(ss, p, ',')) precs.push_back(gpu::parse_precision(p, "--precisions"));
    } else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  if (!gpu::gpu_selection_available()) {
    std::printf("selection_cuda_bench: no GPU (%s); nothing measured\n", cuda::describe_gpu().c_str());
    return 0;
  }
#ifdef CASCADE_WITH_CUDA
  try {
    std::printf(
        "GPU: %s\nplan: r/T %.3f, additions %.4f T, removals %.4f T (%s); %d repeats, median\n\n",
        cuda::describe_gpu().c_str(), plan.r_frac, plan.add_frac, plan.rem_frac, plan.source,
        reps);
    std::printf("cuBLAS rates (TFLOP/s): f64 %.1f, f32 %.1f, tf32 %.1f, bf16 %.1f at 8192 x 8192 x 4096\n",
                gemm_tflops(GemmKind::f64, 8192, 8192, 4096, reps),
                gemm_tflops(GemmKind::f32, 8192, 8192, 4096, reps),
                gemm_tflops(GemmKind::tf32, 8192, 8192, 4096, reps),
                gemm_tflops(GemmKind::bf16, 8192, 8192, 4096, reps));
    std::printf(
        "Gram layout (op T, N), 4096 rows x n columns x 4096 (TFLOP/s): f64 n=32768 %.1f, n=32767 %.1f; "
        "tf32 n=32768 %.1f, n=32767 %.1f\n",
        gemm_tflops(GemmKind::f64, 4096, 32768, 4096, reps, true),
        gemm_tflops(GemmKind::f64, 4096, 32767, 4096, reps, true),
        gemm_tflops(GemmKind::tf32, 4096, 32768, 4096, reps, true),
        gemm_tflops(GemmKind::tf32, 4096, 32767, 4096, reps, true));
    std::printf(
        "\n| d | T | prec | mode | ms (norm + select) | of which norm | gram | rounds phase | x full | layer ms "
        "| "
        "%% of layer | r/T | added | removed | rounds | iters | edges | computed | needed | same set as full "
        "| recomputed (fraction) | recompute ms | parent edges in f64 | same as f64 |\n");
    std::printf(
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---|\n");
    const Options opts{0.30, Similarity::pearson, Rule::greedy};
    for (int64_t d : Ds)
    for (int64_t T : Ts) {
      const double bf16 = gemm_tflops(GemmKind::bf16, int(T), int(d), int(d), reps);
      const double layer_flops = 24.0 * double(T) * d * d + 4.0 * double(T) * double(T) * d;
      const double layer_ms = layer_flops / (bf16 * 1e12) * 1e3;
      std::fprintf(stderr, "T=%lld: bf16 [T,d]x[d,d] %.1f TFLOP/s, layer %.3f ms\n", (long long)T, bf16,
                   layer_ms);
      const Pair pair = make_pair(T, d, plan, 42 + uint64_t(T));
      gpu::GpuSelection ref[2];  // f64's full and cascade, when measured
      bool have_ref = false;
      for (gpu::Precision p : precs) {
        const gpu::GpuOptions go{p, 0};
        gpu::DeviceFeatures zb = gpu::normalize_host(pair.below.data(), T, d, opts.similarity, p);
        const Selection below = gpu::run_full(zb, opts, go).sel;
        zb = gpu::DeviceFeatures();
        // X of layer l+1 on the device once; each repeat normalises it and selects.
        cuda::Buffer<float> x =
            cuda::Buffer<float>::from_host(std::span<const float>(pair.above), cuda::context().stream);
        gpu::GpuSelection full, casc;
        double full_ms = 0;
        for (int mode = 0; mode < 2; ++mode) {
          std::vector<double> total, norm, gram, rounds, recompute;
          gpu::GpuSelection res;
          for (int i = 0; i <= reps; ++i) {
            gpu::DeviceFeatures z = gpu::normalize_device(x.data(), T, d, opts.similarity, p);
            res = mode == 0 ? gpu::run_full(z, opts, go, &below) : gpu::run_cascade(z, below, opts, go);
            if (i == 0) continue;  // warm-up
            total.push_back(z.ms_normalize() + res.stats.ms_total);
            norm.push_back(z.ms_normalize());
            gram.push_back(res.stats.ms_gram);
            rounds.push_back(res.stats.ms_rounds);
            recompute.push_back(res.stats.ms_recompute);
          }
          const double ms = median(total);
          if (mode == 0)
            full_ms = ms, full = res;
          else
            casc = res;
          const Selection& s = res.sel;
          if (p == gpu::Precision::f64) ref[mode] = res, have_ref = true;
          const Selection& r = ref[mode].sel;
          const bool same = s.parent == r.parent && s.added == r.added && s.removed == r.removed &&
                            s.cost.needed == r.cost.needed;
          std::printf(
              "| %lld | %lld | %s | %s | %.3f | %.3f | %.3f | %.3f | %.2f | %.3f | %.1f%% | %.3f | %zu | %zu | %lld "
              "| %lld | "
              "%lld | %lld | %lld | %s | %lld (%.2e) | %.3f | %lld | %s |\n",
              (long long)d, (long long)T, gpu::precision_name(p), mode == 0 ? "full" : "cascade", ms, median(norm), median(gram),
              median(rounds), ms / full_ms, layer_ms, 100.0 * ms / layer_ms,
              double(s.reps.size()) / double(T), s.added.size(), s.removed.size(),
              (long long)res.stats.rounds, (long long)res.stats.iterations, (long long)res.stats.edges,
              (long long)s.cost.computed, (long long)s.cost.needed,
              mode == 0
                  ? "-"
                  : (casc.sel.reps == full.sel.reps && casc.sel.parent == full.sel.parent ? "yes" : "NO"),
              (long long)res.stats.recomputed, res.stats.recomputed_fraction, median(recompute),
              (long long)res.stats.recomputed_parent_edges, !have_ref ? "-" : same ? "yes" : "NO");
          std::fflush(stdout);
        }
      }
    }
  } catch (const Error& e) {
    std::fprintf(stderr, "selection_cuda_bench: %s\n", e.what());
    return 1;
  }
#endif
  return 0;
}
