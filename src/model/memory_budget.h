// The memory checks at load: a model whose weights cannot fit must fail with one clear message
// before anything is allocated, not be killed by the OOM killer (or die of bad_alloc) halfway
// through widening or uploading its tensors. What counts depends on where the model runs:
// - on the CPU, float32 tensors are used in place from the memory map and cost no allocation;
//   every other dtype (F16, BF16, the GGUF quantised types) is widened or dequantised into owned
//   float32, 4 bytes per element;
// - on the GPU, F32/F16/BF16 tensors go from the map to the device (the host holds the mapped
//   file's pages only); quantised GGUF types are still dequantised to float32 on the host first.
//   The device needs the uploaded weights in the compute dtype (norm weights in float32).
// The host sum is compared with what the process may use, the device sum with the GPU's free memory.
#pragma once
#include <cstdint>
#include <string>

#include "core/dtype.h"
#include "io/weights.h"
#include "model/device_decoder.h"
#include "arch/weights.h"

namespace cascade {

// Bytes the weights take in owned host memory when the model runs on device d (see above).
uint64_t host_weight_bytes(const WeightSource& src, Device d);

// Bytes of device memory the weights take uploaded in compute dtype t.
uint64_t device_weight_bytes(const StoredWeights& w, DType t);

// Bytes this process may still allocate: physical memory, lowered to the cgroup (v2) memory limit
// and to the headroom under RLIMIT_AS where those are set.
uint64_t available_memory();

// Throws cascade::Error naming source when the weights' host memory on device d exceeds `available`.
void check_memory_budget(const WeightSource& src, const std::string& source, Device d,
                         uint64_t available = available_memory());

// Throws cascade::Error naming the checkpoint when the weights in dtype t need more than the
// `free_bytes` of device memory.
void check_device_budget(const StoredWeights& w, DType t, uint64_t free_bytes);

}  // namespace cascade
