// cuda/runtime.h and cuda/context.h for the CUDA build.
#include <cstdio>
#include <mutex>
#include <sstream>

#include "cuda/context.h"
#include "cuda/runtime.h"

namespace cascade::cuda {

namespace {
// cudaGetDeviceCount's answer, once: on a machine without a driver it is an error code, not a GPU.
cudaError_t device_count(int& n) {
  static int count = 0;
  static cudaError_t err = cudaGetDeviceCount(&count);
  n = count;
  return err;
}
}  // namespace

bool built_with_cuda() { return true; }

bool gpu_available() {
  int n = 0;
  return device_count(n) == cudaSuccess && n > 0;
}

std::string describe_gpu() {
  int n = 0;
  const cudaError_t err = device_count(n);
  if (err != cudaSuccess) return std::string("none: ") + cudaGetErrorString(err);
  if (n == 0) return "none: the CUDA driver reports no GPU";
  int dev = 0;
  cudaGetDevice(&dev);
  cudaDeviceProp p{};
  if (cudaGetDeviceProperties(&p, dev) != cudaSuccess) return "none: cudaGetDeviceProperties failed";
  std::ostringstream os;
  os.precision(3);
  os << p.name << " (sm_" << p.major << p.minor << ", " << p.multiProcessorCount << " SMs, "
     << double(p.totalGlobalMem) / double(1ull << 30) << " GiB)";
  return os.str();
}

void require_gpu() {
  if (!gpu_available()) fail("--device cuda: no usable GPU: ", describe_gpu());
}

Context::Context() : lt_workspace() {
  require_gpu();
  int dev = 0;
  CASCADE_CUDA_CHECK(cudaGetDevice(&dev));
  CASCADE_CUDA_CHECK(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, dev));
  CASCADE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  CASCADE_CUBLAS_CHECK(cublasCreate(&blas));
  CASCADE_CUBLAS_CHECK(cublasSetStream(blas, stream));
  CASCADE_CUBLAS_CHECK(cublasLtCreate(&blas_lt));
  lt_workspace = Buffer<unsigned char>(size_t(32) << 20);
  attention_partials = Buffer<float>(size_t(18 * sm_count) * 258);
}

Context::~Context() {
  // Destroyed at exit; errors here have nowhere to go, and the driver may already be shutting down.
  if (blas_lt) cublasLtDestroy(blas_lt);
  if (blas) cublasDestroy(blas);
  if (stream) cudaStreamDestroy(stream);
}

Context& context() {
  static Context ctx;
  return ctx;
}

}  // namespace cascade::cuda
