// The memory check at load: a model whose weights cannot fit must fail with one clear message
// before anything is allocated, not be killed by the OOM killer (or die of bad_alloc) halfway
// through widening its tensors. Float32 tensors are used in place from the memory map and cost no
// allocation; every other dtype (F16, BF16, the GGUF quantized types) is widened or dequantized
// into owned float32, 4 bytes per element. That sum is compared with what the process may use.
#pragma once
#include <cstdint>
#include <string>

#include "io/weights.h"

namespace cascade {

// Bytes the weights will take in owned memory once loaded as float32.
uint64_t widened_weight_bytes(const WeightSource& src);

// Bytes this process may still allocate: physical memory, lowered to the cgroup (v2) memory limit
// and to the headroom under RLIMIT_AS where those are set.
uint64_t available_memory();

// Throws cascade::Error naming source when the widened weights need more than `available` bytes.
void check_memory_budget(const WeightSource& src, const std::string& source, uint64_t available = available_memory());

}  // namespace cascade
