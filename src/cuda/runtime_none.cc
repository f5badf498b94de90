// The CPU-only build's answers to cuda/runtime.h (the CUDA build compiles runtime.cu instead).
#ifndef CASCADE_WITH_CUDA
#include "cuda/runtime.h"

#include "core/error.h"

namespace cascade::cuda {

bool built_with_cuda() { return false; }
bool gpu_available() { return false; }
std::string describe_gpu() { return "none: this build has no CUDA backend (configure with -DCASCADE_WITH_CUDA=ON)"; }
void require_gpu() { fail("--device cuda: ", describe_gpu()); }

}  // namespace cascade::cuda
#endif
