// Instances of the attention kernels for __nv_bfloat16 (see attention_cuda_kernel.cuh).
#include "ops/attention_cuda_kernel.cuh"

namespace cascade::ops::gpu::attn {
template void run_flash<__nv_bfloat16, 64>(const Params&, Stream);
template void run_flash<__nv_bfloat16, 80>(const Params&, Stream);
template void run_flash<__nv_bfloat16, 96>(const Params&, Stream);
template void run_flash<__nv_bfloat16, 128>(const Params&, Stream);
template void run_flash<__nv_bfloat16, 256>(const Params&, Stream);
template void run_split<__nv_bfloat16, 2>(const Params&, Stream);
template void run_split<__nv_bfloat16, 3>(const Params&, Stream);
template void run_split<__nv_bfloat16, 4>(const Params&, Stream);
template void run_split<__nv_bfloat16, 8>(const Params&, Stream);
}  // namespace cascade::ops::gpu::attn
