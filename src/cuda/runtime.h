// What the rest of the engine may ask about CUDA without including any CUDA header: whether this
// build has the backend and whether a GPU is there. A CPU-only build answers "no" (runtime_none.cc),
// so callers have no #ifdef; asking for `--device cuda` there is a cascade::Error, not a crash.
#pragma once
#include <string>

namespace cascade::cuda {

bool built_with_cuda();
// True when this build has CUDA and the driver reports at least one usable GPU. Never throws.
bool gpu_available();
// One line: "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.1 GiB)", or why there is none.
std::string describe_gpu();
// Throws cascade::Error naming the reason when gpu_available() is false.
void require_gpu();

}  // namespace cascade::cuda
