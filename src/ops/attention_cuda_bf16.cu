// Instances of the attention kernels for __nv_bfloat16 (see attention_cuda_kernel.cuh).
#include "ops/attention_cuda_kernel.cuh"

namespace cascade::ops::gpu::attn {
template void run_flash<__nv_bfloat16, 64, 1>(const Params&, Stream);
template void run_flash<__nv_bfloat16, 64, 2>(const Params&, Stream);
template void run_flash<__nv_bfloat16, 80, 1>(const Params&, Stream);
template void run_flash<__nv_bfloat16, 80, 2>(const Params&, Stream);
template void run_flash<__nv_bfloat16, 96, 1>(const Params&, Stream);
template void run_flash<__nv_bfloat16, 96, 2>(const Params&, Stream);
template void run_flash<__nv_bfloat16, 128, 1>(const Params&, Stream);
template void run_flash<__nv_bfloat16, 128, 2>(const Params&, Stream);
template void run_flash<__nv_bfloat16, 256, 1>(const Params&, Stream);
template void run_split<__nv_bfloat16, 2>(const Params&, Stream);
template void run_split<__nv_bfloat16, 3>(const Params&, Stream);
template void run_split<__nv_bfloat16, 4>(const Params&, Stream);
template void run_split<__nv_bfloat16, 8>(const Params&, Stream);
template void run_decode<__nv_bfloat16, 64, 4>(const Params&, Stream);
template void run_decode<__nv_bfloat16, 64, 8>(const Params&, Stream);
template void run_decode<__nv_bfloat16, 128, 4>(const Params&, Stream);
template void run_decode<__nv_bfloat16, 128, 8>(const Params&, Stream);
template void run_decode<__nv_bfloat16, 256, 4>(const Params&, Stream);
template void run_decode<__nv_bfloat16, 256, 8>(const Params&, Stream);
template int decode_blocks_per_sm<__nv_bfloat16, 64, 4>();
template int decode_blocks_per_sm<__nv_bfloat16, 64, 8>();
template int decode_blocks_per_sm<__nv_bfloat16, 128, 4>();
template int decode_blocks_per_sm<__nv_bfloat16, 128, 8>();
template int decode_blocks_per_sm<__nv_bfloat16, 256, 4>();
template int decode_blocks_per_sm<__nv_bfloat16, 256, 8>();
}  // namespace cascade::ops::gpu::attn
