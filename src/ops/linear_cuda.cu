// y = x W^T + b on the GPU through cuBLASLt, bias in the GEMM epilogue. Row-major operands are read
// as the column-major problem y^T[out, n] = W[out, in] (transposed view of the stored [out, in]
// rows) x^T[in, n]: the "TN" layout cuBLAS is fastest at. One plan (descriptors and the heuristic's
// algorithm) per shape, dtype and operand alignment, made on first use and kept. A decoding step's
// few 16-bit rows take ops/gemv_cuda.cu instead. CPU twin: ops/linear.cc.
#include <map>
#include <mutex>
#include <tuple>

#include "cuda/context.h"
#include "ops/cuda_common.cuh"
#include "ops/cuda_ops.h"
#include "ops/gemv_cuda.cuh"

namespace cascade::ops::gpu {

namespace {

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::F32: return CUDA_R_32F;
    case DType::F16: return CUDA_R_16F;
    case DType::BF16: return CUDA_R_16BF;
    default: fail("linear: unsupported dtype ", dtype_name(t));
  }
}

uint32_t alignment(const void* p) {
  uint32_t a = 256;
  while (a > 1 && reinterpret_cast<uintptr_t>(p) % a) a >>= 1;
  return a;
}

struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
};

using Key = std::tuple<int, int, int64_t, int64_t, int64_t, int64_t, int64_t, bool, uint32_t, uint32_t, uint32_t, uint32_t, int>;

cublasLtEpilogue_t lt_epilogue(bool bias, Epilogue act) {
  switch (act) {
    case Epilogue::Relu: return bias ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_RELU;
    case Epilogue::GeluTanh: return bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU;
    default: return bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
  }
}

Plan make_plan(DType t, DType yt, int64_t n, int64_t in, int64_t out, int64_t ldx, int64_t ldy, bool bias,
               uint32_t al_x, uint32_t al_w, uint32_t al_y, uint32_t al_b, Epilogue act) {
  cuda::Context& ctx = cuda::context();
  Plan p;
  CASCADE_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  CASCADE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  CASCADE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  const cublasLtEpilogue_t ep = lt_epilogue(bias, act);
  CASCADE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof(ep)));
  if (bias) {
    const cudaDataType_t bt = cuda_type(yt);
    CASCADE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof(bt)));
  }
  CASCADE_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.a, cuda_type(t), uint64_t(in), uint64_t(out), in));
  CASCADE_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.b, cuda_type(t), uint64_t(in), uint64_t(n), ldx));
  CASCADE_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.d, cuda_type(yt), uint64_t(out), uint64_t(n), ldy));
  cublasLtMatmulPreference_t pref;
  CASCADE_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  const uint64_t ws = ctx.lt_workspace.size();
  CASCADE_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
  CASCADE_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_w, 4));
  CASCADE_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_x, 4));
  CASCADE_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_y, 4));
  CASCADE_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_y, 4));
  (void)al_b;
  cublasLtMatmulHeuristicResult_t res{};
  int found = 0;
  CASCADE_CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(ctx.blas_lt, p.desc, p.a, p.b, p.d, p.d, pref, 1, &res, &found));
  cublasLtMatmulPreferenceDestroy(pref);
  if (found == 0)
    fail("cuBLASLt has no algorithm for linear ", n, " x ", in, " -> ", out, " (", dtype_name(t), " -> ", dtype_name(yt), ")");
  p.algo = res.algo;
  return p;
}

}  // namespace

Epilogue linear_fuses(Activation a, DType t) {
  if (a == Activation::Relu) return Epilogue::Relu;
  if (a == Activation::GeluTanh && t != DType::F32) return Epilogue::GeluTanh;
  return Epilogue::None;
}

void linear(const LinearArgs& a, Stream s) {
  const DType t = a.t, yt = a.yt;
  const int64_t n = a.n, in = a.in, out = a.out, ldx = a.ldx, ldy = a.ldy;
  const void *x = a.x, *w = a.w, *bias = a.bias;
  void* y = a.y;
  const Epilogue act = a.act;
  if (n == 0) return;
  CASCADE_CHECK(yt == t || yt == DType::F32, "linear: output dtype must be the input's or f32");
  if (gemv_fits(a)) {  // a decoding step's rows: a read of W at the memory's pace (ops/gemv_cuda.cu)
    gemv(a, s);
    return;
  }
  static std::mutex mu;
  static std::map<Key, Plan> plans;
  const Key key{int(t), int(yt), n, in, out, ldx, ldy, bias != nullptr, alignment(x), alignment(w), alignment(y),
                alignment(bias), int(act)};
  Plan* p;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = plans.find(key);
    if (it == plans.end())
      it = plans.emplace(key, make_plan(t, yt, n, in, out, ldx, ldy, bias != nullptr, std::get<8>(key), std::get<9>(key),
                                        std::get<10>(key), std::get<11>(key), act)).first;
    p = &it->second;
  }
  cuda::Context& ctx = cuda::context();
  if (bias)
    CASCADE_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
  const float alpha = 1.f, beta = 0.f;
  CASCADE_CUBLAS_CHECK(cublasLtMatmul(ctx.blas_lt, p->desc, &alpha, w, p->a, x, p->b, &beta, y, p->d, y, p->d, &p->algo,
                                      ctx.lt_workspace.data(), ctx.lt_workspace.size(), s));
}

void linear_glu(const GluArgs& a, Stream s) {
  CASCADE_CHECK(is_glu(a.act), "linear_glu: not a GLU activation");
  CASCADE_CHECK(a.gate.ldy == a.gate.out, "linear_glu: the output's rows must be contiguous");
  CASCADE_CHECK(a.gate.yt == a.gate.t && a.gate.act == Epilogue::None,
                "linear_glu: the output in the operands' dtype, no epilogue");
  if (a.gate.n == 0) return;
  if (gemv_glu_fits(a)) {  // a decoding step: both weights read in one pass (ops/gemv_cuda.cu)
    gemv_glu(a, s);
    return;
  }
  LinearArgs up = a.gate;
  up.w = a.up_w;
  up.bias = a.up_bias;
  up.y = a.scratch;
  linear(up, s);
  linear(a.gate, s);
  activation(a.gate.t, a.act, a.gate.y, a.scratch, a.gate.n * a.gate.out, s);
}

}  // namespace cascade::ops::gpu
