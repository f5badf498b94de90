// Token selection on the GPU (SPEC sections 1, 2 and 5): the full selection and the exact cascade of
// select/selection.h, computed from features that live on the device, with the same Selection as the
// CPU reference (the same set and parents, the same Gram counts where the work is the same).
//
// Design. Features are normalised on the device (one block per row, float64 sums, as normalize()),
// and every inner product is a cuBLAS GEMM in the chosen precision:
//  - f64 (the default): DGEMM on Hopper's FP64 tensor cores; the CPU reference's rho up to the order
//    of the sums (~1e-16), hence its decisions. Measured on an H100 (BENCHMARKS.md, "GPU: selection"):
//    DGEMM 63 TFLOP/s at the Gram's shapes, a full selection of T = 32768, d = 4096 in 92 ms.
//  - f32: SGEMM with CUBLAS_COMPUTE_32F_PEDANTIC (no TF32): rho to ~1e-6; no faster than f64 on
//    Hopper (51 TFLOP/s), kept for GPUs with slow FP64.
//  - tf32: fp32 inputs rounded to 10-bit mantissas on the tensor cores, fp32 accumulation: rho to
//    ~1e-4 (decisions may differ from the CPU's for tokens that close to theta); 6x faster than f64
//    (392 TFLOP/s). The decoder's fp16/bf16 would be coarser still.
//  - f16-certified (the GPU ADA's default, --gram-precision): the float64 decisions at the tensor
//    cores' fp16 rate, 2x to 9x faster than f64 at T >= 8192 on an H200 (BENCHMARKS.md). The Gram is
//    an fp16 GEMM with fp32 accumulation; an entry within certified_bound(d) of the threshold (which
//    the fp16 value cannot decide) is recomputed as a float64 dot product of the float64 rows and decided on it, and
//    every parent whose best candidates lie within twice the bound of each other is decided on float64
//    values (see certified_bound). The set, parents and counts equal f64's, except for a rho within
//    ~d 2^-53 of theta - kRhoSlack or a parent tie that close, where two float64 summation orders
//    (the DGEMM's and the recomputation's) may already disagree.
//    fp16 rather than bf16: 3 more mantissa bits (u = 2^-11 instead of 2^-8) make the bound, and so the
//    band of entries recomputed, 8 times narrower; unit-norm components lie in [-1, 1], far inside fp16's
//    range, and the few tiny ones that fall into its subnormals are covered by an absolute term.
// The greedy set is the lexicographically-first maximal independent set of the graph whose edges are
// the pairs with rho >= theta; it is resolved in parallel rounds (Blelloch, Fineman and Shun, SPAA
// 2012), never by one thread walking T tokens: each round decides, from the previous round's states, every
// undecided token t that has an earlier neighbour in the set (t is out) or whose earlier neighbours are all
// out (t joins). The rounds are Jacobi steps, so their number is a property of the graph (the longest chain
// of decisions), reported in GpuStats. The Gram is formed in causal row panels; each panel is reduced at once
// to the edges it holds (row t, column s < t, rho >= theta), so the memory is one panel plus the edge list. A
// panel's column count is padded to a multiple of 32 (cuBLAS runs an odd count 1.25x (f64) to 3x (tf32)
// slower); the padding is computed and counted. Panels, edge list and states live in a workspace
// kept from call to call, so a call's time is its kernels', not cudaMalloc's.
//
// Gram counts (SPEC 5). needed is counted exactly as the CPU counts it: T(T-1)/2 for the full
// selection; for the cascade the causal rows of the layer below's columns and of the additions'
// spot columns. computed is what the GEMMs evaluate: the rectangles of the row panels (P rows, the
// default P = max(256, T/8), so about T^2/2 (1 + P/T) for the full selection instead of the CPU's
// T(T+1)/2), the padding, and the spot columns of tokens that entered the set in one iteration and
// left it in the next (speculative: computed, not needed).
//
// The exact cascade checks the layer below's set P with the causal cross-Gram Z Z[P]^T, panelled as
// the full Gram is, and resolves the rounds on the graph known so far: edges to P and to the tokens
// that have a spot column. A token outside P that comes out in the set cannot be trusted until its own
// column is known, so every such token gets a spot column (one batched GEMM per iteration, rows after
// it) and the rounds run again; when every token in the set has its column, the set is the greedy set
// of the whole graph (the decisions of a token in the set are against known columns only). The first
// iteration usually finds all the additions, the second confirms them.
//
// This header includes no CUDA header. A build without CUDA declares the same functions and they
// throw cascade::Error, so callers need no #ifdef; gpu_selection_available() says which.
#pragma once
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>

#include "core/error.h"
#include "select/selection.h"

namespace cascade::select::gpu {

enum class Precision { f64, f32, tf32, f16_certified };

// The names options and tables use: f64, f32, tf32, f16-certified. parse_precision throws
// cascade::Error naming `label` and the accepted names for anything else.
const char* precision_name(Precision p);
Precision parse_precision(const std::string& name, const std::string& label = "gram precision");

// Whether features normalised for precision p keep float64 rows (f64; f16-certified beside its fp16
// copy): what the certified recomputation and decoding's selector (gpu_incremental.h) read.
constexpr bool keeps_float64(Precision p) { return p == Precision::f64 || p == Precision::f16_certified; }

// rho >= theta - slack counts as reaching theta: kRhoSlack in f64 (and f16-certified, whose decisions
// are float64's); in f32 the rounding of a unit inner product of d terms is ~1e-6, so an exact
// duplicate (tau = 0) needs a wider slack.
inline constexpr double kRhoSlackF32 = 1e-5;
inline constexpr double kRhoSlackTF32 = 2e-4;
constexpr double rho_slack(Precision p) {
  return p == Precision::f32 ? kRhoSlackF32 : p == Precision::tf32 ? kRhoSlackTF32 : kRhoSlack;
}

// A rigorous bound E(d) on |rho_16 - rho_64| for f16-certified: rho_64 = sum a_i b_i the exact inner
// product of two float64 rows of norm <= 1 (the values the f64 selection's DGEMM rounds), rho_16 the
// fp32 result of the fp16 GEMM on their fp16 roundings.
//  1. Rounding to fp16 (round to nearest, unit u = 2^-11; absolute eta = 2^-25 below fp16's normal
//     range, half its smallest subnormal step): fl(a_i) = a_i (1 + e_i) + n_i, |e_i| <= u, |n_i| <= eta.
//     |sum a_i b_i - sum fl(a_i) fl(b_i)| <= sum |a_i b_i| (2u + u^2) + eta (1 + u)(||a||_1 + ||b||_1)
//     + d eta^2 <= (2u + u^2) ||a|| ||b|| + 2 eta (1 + u) sqrt(d) + d eta^2 (Cauchy-Schwarz:
//     sum |a_i b_i| <= ||a|| ||b|| = 1 for unit rows, ||a||_1 <= sqrt(d)).
//  2. The fp16 products are exact in fp32 (22 significant bits); their sum in fp32, in any order and
//     blocking, is within gamma_d sum |fl(a_i) fl(b_i)| of the exact sum, gamma_d = d v / (1 - d v),
//     and sum |fl(a_i) fl(b_i)| <= ||fl(a)|| ||fl(b)|| <= (1 + u + eta sqrt(d))^2. For recursive
//     round-to-nearest v would be 2^-24; the tensor cores instead align a block's products to the
//     largest exponent and truncate (Fasi, Higham, Mikaitis, Pranesh 2021), which costs up to about
//     (k + 2) / k units of 2^-23 per block addition of k products, so v = 2^-22 (k >= 2) here.
//  3. The float64 side: the f64 selection decides on its DGEMM's rho, within gamma_d(2^-53) ~ d 2^-53 of
//     the exact inner product; the term 2 d 2^-53 + 1e-15 covers that and the float64 arithmetic of
//     the comparisons rho_16 -+ E against theta. The normalisation's own error (z itself, ~1e-16 per
//     component) does not enter: both modes decide on the same float64 z.
// E(576) ~ 1.1e-3, E(4096) ~ 2.0e-3, E(8192) ~ 2.9e-3.
inline double certified_bound(int64_t d) {
  const double u = 0x1.0p-11, eta = 0x1.0p-25, v = 0x1.0p-22, n = double(d);
  const double round = (2 * u + u * u) + 2 * eta * (1 + u) * std::sqrt(n) + n * eta * eta;
  const double norm = 1 + u + eta * std::sqrt(n);
  const double gamma = n * v / (1 - n * v);
  return round + gamma * norm * norm + 2 * n * 0x1.0p-53 + 1e-15;
}

struct GpuOptions {
  Precision precision = Precision::f64;
  // Rows per Gram panel; 0 chooses max(256, T/8 rounded up to 256), less when the panel would pass
  // 1 GiB. The kernels evaluate the causal entries plus the triangles above each panel's diagonal.
  int64_t panel_rows = 0;
};

// What a GPU selection did besides its Selection.
struct GpuStats {
  int64_t rounds = 0;        // Jacobi rounds of the parallel greedy resolution, over all iterations
  int64_t iterations = 0;    // cascade: resolutions (each after a batch of spot columns); full: 1
  int64_t edges = 0;         // pairs (t, s < t) with rho >= theta found in the columns evaluated
  int64_t spot_columns = 0;  // cascade: spot columns evaluated (additions and speculative ones)
  int64_t panel_rows = 0;    // rows per Gram panel used
  double ms_total = 0;       // device time of the whole call (CUDA events), normalisation excluded
  double ms_gram = 0;        // of which cuBLAS GEMMs and edge extraction
  double ms_rounds = 0;      // of which the rounds and the parents
  // f16-certified only: Gram entries within certified_bound(d) of theta recomputed in float64 (in
  // ms_gram, and timed alone in ms_recompute), and the edges of tokens whose parent had to be decided
  // in float64 (in ms_rounds). recomputed_fraction: recomputed / cost.computed.
  int64_t recomputed = 0;
  int64_t recomputed_parent_edges = 0;
  double recomputed_fraction = 0;
  double ms_recompute = 0;
};

struct GpuSelection {
  Selection sel;
  GpuStats stats;
};

// Normalised features z [T, d] on the device, in the precision of the Gram that will read them
// (f16-certified keeps the float64 rows, which the recomputation reads, and their fp16 copy).
class DeviceFeatures {
 public:
  DeviceFeatures();
  ~DeviceFeatures();
  DeviceFeatures(DeviceFeatures&&) noexcept;
  DeviceFeatures& operator=(DeviceFeatures&&) noexcept;
  int64_t T() const;
  int64_t d() const;
  Precision precision() const;
  double ms_normalize() const;  // device time of the normalisation
  // z as float64 on the host, for tests ([T, d] row-major); f16-certified: the float64 rows.
  std::vector<double> download() const;
  struct Impl;
  Impl* impl() const { return impl_.get(); }

 private:
  std::unique_ptr<Impl> impl_;
  friend DeviceFeatures normalize_device(const float*, int64_t, int64_t, Similarity, Precision);
};

// True when this build has the CUDA backend and a GPU is there (never throws).
bool gpu_selection_available();

// x [T, d] float32 row-major in device memory (e.g. a layer's pre-attention norm output) -> z.
// Runs on cuda::context().stream. Throws cascade::Error if T < 1 or d < 1, or without a GPU.
DeviceFeatures normalize_device(const float* x_device, int64_t T, int64_t d, Similarity similarity,
                                Precision precision = Precision::f64);
// The same from host memory (uploaded first).
DeviceFeatures normalize_host(const float* x_host, int64_t T, int64_t d, Similarity similarity,
                              Precision precision = Precision::f64);

// The Gram block <z_i, z_j>, i < rows, j < cols, exactly as the selection's GEMM forms it in z's
// precision (f16-certified: the fp16 GEMM's fp32 values, before any recomputation), [rows, cols]
// row-major on the host: what the bound of certified_bound is checked against.
std::vector<double> gram_block(const DeviceFeatures& z, int64_t rows, int64_t cols);

// SPEC 1 on the GPU: the causal Gram in panels, then the rounds. Greedy rule only: under all-earlier
// the parent (the best earlier representative) may lie below theta, outside the edge list, and needs
// a second cross-Gram that is not implemented here (cascade::Error; the CPU run_full has the rule).
// prev (optional) only fills added / removed. opts.similarity is the one z was normalised with.
GpuSelection run_full(const DeviceFeatures& z, const Options& opts, const GpuOptions& gopts = {},
                      const Selection* prev = nullptr);
// SPEC 2 on the GPU: exact cascade from the layer below; the same set and parents as run_full.
// Greedy rule only (cascade::Error otherwise, as the CPU's).
GpuSelection run_cascade(const DeviceFeatures& z, const Selection& prev, const Options& opts,
                         const GpuOptions& gopts = {});
// A layer's selection as select::run_layer states it, in the two modes the GPU has: the exact cascade
// from the layer below's selection prev, or the full selection (the first layer's, prev null, and
// Mode::full's, which fills added / removed against prev). Other modes: cascade::Error (the callers
// refuse them, or select on the host).
inline GpuSelection run_layer(const DeviceFeatures& z, const Selection* prev, const Options& opts, Mode mode,
                              const GpuOptions& gopts = {}) {
  CASCADE_CHECK(!prev || mode == Mode::full || mode == Mode::cascade,
                "the GPU selection has the full and cascade modes only");
  return prev && mode == Mode::cascade ? run_cascade(z, *prev, opts, gopts) : run_full(z, opts, gopts, prev);
}

}  // namespace cascade::select::gpu
