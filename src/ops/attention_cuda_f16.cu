// Instances of the attention kernels for __half (see attention_cuda_kernel.cuh).
#include "ops/attention_cuda_kernel.cuh"

namespace cascade::ops::gpu::attn {
template void run_flash<__half, 64, 1>(const Params&, Stream);
template void run_flash<__half, 64, 2>(const Params&, Stream);
template void run_flash<__half, 80, 1>(const Params&, Stream);
template void run_flash<__half, 80, 2>(const Params&, Stream);
template void run_flash<__half, 96, 1>(const Params&, Stream);
template void run_flash<__half, 96, 2>(const Params&, Stream);
template void run_flash<__half, 128, 1>(const Params&, Stream);
template void run_flash<__half, 128, 2>(const Params&, Stream);
template void run_flash<__half, 256, 1>(const Params&, Stream);
template void run_split<__half, 2>(const Params&, Stream);
template void run_split<__half, 3>(const Params&, Stream);
template void run_split<__half, 4>(const Params&, Stream);
template void run_split<__half, 8>(const Params&, Stream);
template void run_decode<__half, 64, 4>(const Params&, Stream);
template void run_decode<__half, 64, 8>(const Params&, Stream);
template void run_decode<__half, 128, 4>(const Params&, Stream);
template void run_decode<__half, 128, 8>(const Params&, Stream);
template void run_decode<__half, 256, 4>(const Params&, Stream);
template void run_decode<__half, 256, 8>(const Params&, Stream);
template int decode_blocks_per_sm<__half, 64, 4>();
template int decode_blocks_per_sm<__half, 64, 8>();
template int decode_blocks_per_sm<__half, 128, 4>();
template int decode_blocks_per_sm<__half, 128, 8>();
template int decode_blocks_per_sm<__half, 256, 4>();
template int decode_blocks_per_sm<__half, 256, 8>();
}  // namespace cascade::ops::gpu::attn
