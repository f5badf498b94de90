// CPU linear layer: one sgemm per call, so a prefill of T tokens is one batched product per weight;
// a single row (decoding) is one sgemv.
#include "ops/linear.h"

#include <cblas.h>

namespace cascade::ops {

void linear(const MatrixView& l, const float* x, int64_t n, int64_t ldx, float* y, int64_t ldy) {
  if (n == 0) return;
  if (l.bias) {
#pragma omp parallel for if (n * l.out > 65536)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < l.out; ++j) y[i * ldy + j] = l.bias[j];
  }
  const float beta = l.bias ? 1.f : 0.f;
  if (n == 1) {  // decoding: a matrix-vector product; sgemm's blocking buys nothing for one row
    if (l.in_major)
      cblas_sgemv(CblasRowMajor, CblasTrans, int(l.in), int(l.out), 1.f, l.w, int(l.ld), x, 1, beta, y, 1);
    else
      cblas_sgemv(CblasRowMajor, CblasNoTrans, int(l.out), int(l.in), 1.f, l.w, int(l.ld), x, 1, beta, y, 1);
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, l.in_major ? CblasNoTrans : CblasTrans, int(n), int(l.out), int(l.in),
              1.f, x, int(ldx), l.w, int(l.ld), beta, y, int(ldy));
}

void add_inplace(float* y, const float* x, int64_t n) {
#pragma omp parallel for simd if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

}  // namespace cascade::ops
