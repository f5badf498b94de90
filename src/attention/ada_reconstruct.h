// ADA's `lstsq` reconstruction (SPEC 6, reps mode): the sub-layer output of a non-representative t is
// sum_s c_s o_s over the at most kMixTerms earlier representatives s of largest rho(t, s) (ties: the
// smaller s), with c = argmin ||z_t - sum_s c_s z_s||_2 on the normalised selection features z. The
// coefficients depend on the features only, so the plan (attention/ada_plan.h) computes them once and
// the executors only form the weighted sum of the representatives' outputs.
#pragma once
#include <cstdint>
#include <vector>

namespace cascade {

inline constexpr int kMixTerms = 8;

// One token's reconstruction: terms (representative index j, coefficient), unused terms j = -1, c = 0.
struct MixRow {
  int32_t rep[kMixTerms];
  float coef[kMixTerms];
};

// The coefficients of token z_t [d] against the k representatives before it, whose rows are
// reps_z [k, d] (float64, in position order; index j is the j-th representative). The same call in
// the prefill and while decoding (the representatives before t are always a prefix), so both give
// the same bits.
//
// Solve: the columns are taken in order of decreasing rho (ties: the earlier representative), and
// the normal equations G c = b (G = Z_S Z_S^T, b = Z_S z_t, float64) are factorised by Cholesky in
// that order. A column whose pivot (the squared norm of its residual after projection onto the
// columns kept before it) is at most kRankTol times its squared norm is dropped (coefficient 0): rank
// deficiency (a zero row, a representative in the span of better ones) is resolved deterministically
// in favour of the more correlated representatives.
MixRow lstsq_mix(const double* reps_z, int64_t k, int64_t d, const double* z_t);

inline constexpr double kRankTol = 1e-10;

}  // namespace cascade
