// ggml tensor types as GGUF stores them, and their dequantization to float32. Block layouts follow
// ggml's ggml-common.h / ggml-quants.c (dequantize_row_*), element for element, so that a weight
// read here equals what llama.cpp computes from the same bytes. Only the types the engine reads
// are implemented; every other ggml type still has a name so that errors can say what a file holds.
#pragma once
#include <cstdint>
#include <string>

namespace cascade {

// Values are ggml's enum ggml_type ids, which is what a GGUF tensor info records.
enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  BF16 = 30,
};

// ggml's name for any type id ("Q4_K", "IQ2_XS", ...), or "unknown type N".
std::string ggml_type_name(uint32_t id);
// Whether dequantize() handles this type id.
bool ggml_type_supported(uint32_t id);
// "F32, F16, BF16, Q8_0, ...", for error messages.
std::string ggml_supported_types();

struct GgmlBlock {
  int64_t elements;  // values per block (1 for the float types)
  int64_t bytes;     // bytes per block
};
GgmlBlock ggml_block(GgmlType t);

// Dequantizes n values (a multiple of the type's block size) from src into dst.
void dequantize(GgmlType t, const uint8_t* src, float* dst, int64_t n);

}  // namespace cascade
