// Element by element through float32, which holds every F16 and BF16 value exactly.
#include "ops/convert.h"

#include <cstring>

#include "core/error.h"

namespace cascade::ops {

namespace {

float read(DType t, const unsigned char* p) {
  uint16_t h;
  switch (t) {
    case DType::F32: {
      float f;
      std::memcpy(&f, p, 4);
      return f;
    }
    case DType::F16: std::memcpy(&h, p, 2); return f16_to_f32(h);
    case DType::BF16: std::memcpy(&h, p, 2); return bf16_to_f32(h);
    default: fail("convert: ", dtype_name(t), " is not a float dtype");
  }
}

void write(DType t, float v, unsigned char* p) {
  if (t == DType::F32) {
    std::memcpy(p, &v, 4);
    return;
  }
  const uint16_t h = t == DType::F16 ? f32_to_f16(v) : f32_to_bf16(v);
  std::memcpy(p, &h, 2);
}

}  // namespace

void convert(DType from, const void* src, int64_t rows, int64_t cols, DType to, void* dst, int64_t ld, bool transpose) {
  if (to != DType::F32 && to != DType::F16 && to != DType::BF16) fail("convert: ", dtype_name(to), " is not a float dtype");
  const size_t fs = dtype_size(from), ts = dtype_size(to);
  const auto* s = static_cast<const unsigned char*>(src);
  auto* d = static_cast<unsigned char*>(dst);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t at = transpose ? c * ld + r : r * ld + c;
      write(to, read(from, s + size_t(r * cols + c) * fs), d + size_t(at) * ts);
    }
}

}  // namespace cascade::ops
