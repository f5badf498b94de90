// Storage dtypes of checkpoint tensors. Compute on the CPU is float32; f16/bf16 weights are
// widened once at load (see to_f32), f32 weights are used in place from the memory map.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace cascade {

enum class DType { F32, F16, BF16, I32, I64 };

size_t dtype_size(DType t);
std::string dtype_name(DType t);

inline float bf16_to_f32(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest even; a NaN stays a (quiet) NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);  // round to nearest even

// Widens n elements of src (dtype t, which must be F32, F16 or BF16) into dst.
void to_f32(DType t, const void* src, float* dst, size_t n);

}  // namespace cascade
