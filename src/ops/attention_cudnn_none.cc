// A build without cuDNN's attention (CASCADE_WITH_CUDNN off, or no CUDA backend): every case runs
// Cascade's kernel, and --attention-kernel cudnn is refused with this file's reason.
#ifndef CASCADE_WITH_CUDNN
#include "ops/attention_cudnn.h"

namespace cascade::ops::gpu::cudnn_sdpa {

namespace {
const char* const kWhy =
    "this build has no cuDNN attention (configure with -DCASCADE_WITH_CUDNN=ON, cuDNN's cudnn.h and "
    "cudnn-frontend's headers: README \"GPU attention kernels\")";
}

bool built() { return false; }
bool available(std::string* why) {
  if (why) *why = kWhy;
  return false;
}
bool applies(const AttentionArgs&) { return false; }
bool run(const AttentionArgs&, CUstream_st*, std::string* why) {
  *why = kWhy;
  return false;
}
std::string describe() { return std::string("cuDNN unavailable: ") + kWhy; }

}  // namespace cascade::ops::gpu::cudnn_sdpa
#endif
