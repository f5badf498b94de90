// Instances of the attention kernels for float (see attention_cuda_kernel.cuh).
#include "ops/attention_cuda_kernel.cuh"

namespace cascade::ops::gpu::attn {
template void run_split<float, 2>(const Params&, Stream);
template void run_split<float, 3>(const Params&, Stream);
template void run_split<float, 4>(const Params&, Stream);
template void run_split<float, 8>(const Params&, Stream);
}  // namespace cascade::ops::gpu::attn
