// Block dequantization, transcribed from ggml-quants.c (dequantize_row_q4_0 ... dequantize_row_q6_K)
// with the block structs of ggml-common.h. Each kernel decodes one block; dequantize() runs them in
// parallel over blocks, which is safe because blocks are independent. Multi-byte fields are read
// with memcpy: GGUF data is little-endian and only 2-byte aligned inside a block.
#include "io/gguf_dequant.h"

#include <cstring>
#include <iterator>
#include <stdexcept>

#include "core/dtype.h"
#include "core/error.h"

namespace cascade {

namespace {

constexpr int QK = 32;     // block size of the legacy quants (Q4_0 ... Q8_0)
constexpr int QK_K = 256;  // super-block size of the k-quants

float half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

// block_q4_0 { half d; uint8 qs[16]; }: low nibbles are values 0..15, high nibbles 16..31.
void q4_0(const uint8_t* b, float* y) {
  const float d = half_at(b);
  const uint8_t* qs = b + 2;
  for (int j = 0; j < QK / 2; ++j) {
    y[j] = float((qs[j] & 0x0F) - 8) * d;
    y[j + QK / 2] = float((qs[j] >> 4) - 8) * d;
  }
}

// block_q4_1 { half d; half m; uint8 qs[16]; }
void q4_1(const uint8_t* b, float* y) {
  const float d = half_at(b), m = half_at(b + 2);
  const uint8_t* qs = b + 4;
  for (int j = 0; j < QK / 2; ++j) {
    y[j] = float(qs[j] & 0x0F) * d + m;
    y[j + QK / 2] = float(qs[j] >> 4) * d + m;
  }
}

// block_q5_0 { half d; uint8 qh[4]; uint8 qs[16]; }: bit j of qh is the fifth bit of value j.
void q5_0(const uint8_t* b, float* y) {
  const float d = half_at(b);
  uint32_t qh;
  std::memcpy(&qh, b + 2, 4);
  const uint8_t* qs = b + 6;
  for (int j = 0; j < QK / 2; ++j) {
    const uint8_t xh0 = uint8_t(((qh >> j) << 4) & 0x10);
    const uint8_t xh1 = uint8_t((qh >> (j + 12)) & 0x10);
    y[j] = float(((qs[j] & 0x0F) | xh0) - 16) * d;
    y[j + QK / 2] = float(((qs[j] >> 4) | xh1) - 16) * d;
  }
}

// block_q5_1 { half d; half m; uint8 qh[4]; uint8 qs[16]; }
void q5_1(const uint8_t* b, float* y) {
  const float d = half_at(b), m = half_at(b + 2);
  uint32_t qh;
  std::memcpy(&qh, b + 4, 4);
  const uint8_t* qs = b + 8;
  for (int j = 0; j < QK / 2; ++j) {
    const uint8_t xh0 = uint8_t(((qh >> j) << 4) & 0x10);
    const uint8_t xh1 = uint8_t((qh >> (j + 12)) & 0x10);
    y[j] = float((qs[j] & 0x0F) | xh0) * d + m;
    y[j + QK / 2] = float((qs[j] >> 4) | xh1) * d + m;
  }
}

// block_q8_0 { half d; int8 qs[32]; }
void q8_0(const uint8_t* b, float* y) {
  const float d = half_at(b);
  for (int j = 0; j < QK; ++j) y[j] = float(int8_t(b[2 + j])) * d;
}

// get_scale_min_k4: eight 6-bit scales and eight 6-bit mins packed into 12 bytes.
void scale_min_k4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = uint8_t((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = uint8_t((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// block_q4_K { half d; half dmin; uint8 scales[12]; uint8 qs[128]; }: 8 sub-blocks of 32; each
// 32 bytes of qs hold two sub-blocks (low nibbles, then high nibbles).
void q4_k(const uint8_t* b, float* y) {
  const float d = half_at(b), dmin = half_at(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* q = b + 16;
  for (int j = 0, is = 0; j < QK_K; j += 64, is += 2, q += 32) {
    uint8_t sc, m;
    scale_min_k4(is, scales, &sc, &m);
    const float d1 = d * sc, m1 = dmin * m;
    scale_min_k4(is + 1, scales, &sc, &m);
    const float d2 = d * sc, m2 = dmin * m;
    for (int l = 0; l < 32; ++l) *y++ = d1 * float(q[l] & 0xF) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * float(q[l] >> 4) - m2;
  }
}

// block_q5_K { half d; half dmin; uint8 scales[12]; uint8 qh[32]; uint8 qs[128]; }: as Q4_K, with
// the fifth bit of sub-block s in bit s of qh.
void q5_k(const uint8_t* b, float* y) {
  const float d = half_at(b), dmin = half_at(b + 2);
  const uint8_t* scales = b + 4;
  const uint8_t* qh = b + 16;
  const uint8_t* ql = b + 48;
  uint8_t u1 = 1, u2 = 2;
  for (int j = 0, is = 0; j < QK_K; j += 64, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
    uint8_t sc, m;
    scale_min_k4(is, scales, &sc, &m);
    const float d1 = d * sc, m1 = dmin * m;
    scale_min_k4(is + 1, scales, &sc, &m);
    const float d2 = d * sc, m2 = dmin * m;
    for (int l = 0; l < 32; ++l) *y++ = d1 * float((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
    for (int l = 0; l < 32; ++l) *y++ = d2 * float((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
  }
}

// block_q6_K { uint8 ql[128]; uint8 qh[64]; int8 scales[16]; half d; }: 16 sub-blocks of 16 with
// signed 8-bit scales; values are 6 bits (4 from ql, 2 from qh) minus 32.
void q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = half_at(b + 208);
  for (int n = 0; n < QK_K; n += 128, y += 128, ql += 64, qh += 32, sc += 8) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = int((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = int((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = int((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * float(sc[is]) * float(q1);
      y[l + 32] = d * float(sc[is + 2]) * float(q2);
      y[l + 64] = d * float(sc[is + 4]) * float(q3);
      y[l + 96] = d * float(sc[is + 6]) * float(q4);
    }
  }
}

using BlockKernel = void (*)(const uint8_t*, float*);

BlockKernel kernel_of(GgmlType t) {
  switch (t) {
    case GgmlType::Q4_0: return q4_0;
    case GgmlType::Q4_1: return q4_1;
    case GgmlType::Q5_0: return q5_0;
    case GgmlType::Q5_1: return q5_1;
    case GgmlType::Q8_0: return q8_0;
    case GgmlType::Q4_K: return q4_k;
    case GgmlType::Q5_K: return q5_k;
    case GgmlType::Q6_K: return q6_k;
    default: return nullptr;
  }
}

}  // namespace

std::string ggml_type_name(uint32_t id) {
  // Every id ggml has assigned, including retired ones (4, 5, 31-33, 36-38), so that a message
  // names what the file holds rather than a number.
  static const char* const kNames[] = {
      "F32",        "F16",        "Q4_0",       "Q4_1",  "Q4_2",     "Q4_3",     "Q5_0",     "Q5_1",    "Q8_0",
      "Q8_1",       "Q2_K",       "Q3_K",       "Q4_K",  "Q5_K",     "Q6_K",     "Q8_K",     "IQ2_XXS", "IQ2_XS",
      "IQ3_XXS",    "IQ1_S",      "IQ4_NL",     "IQ3_S", "IQ2_S",    "IQ4_XS",   "I8",       "I16",     "I32",
      "I64",        "F64",        "IQ1_M",      "BF16",  "Q4_0_4_4", "Q4_0_4_8", "Q4_0_8_8", "TQ1_0",   "TQ2_0",
      "IQ4_NL_4_4", "IQ4_NL_4_8", "IQ4_NL_8_8", "MXFP4", "NVFP4",    "Q1_0"};
  if (id < std::size(kNames)) return kNames[id];
  return "unknown type " + std::to_string(id);
}

bool ggml_type_supported(uint32_t id) {
  const auto t = GgmlType(id);
  return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::BF16 || kernel_of(t) != nullptr;
}

std::string ggml_supported_types() { return "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K"; }

GgmlBlock ggml_block(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return {1, 4};
    case GgmlType::F16: return {1, 2};
    case GgmlType::BF16: return {1, 2};
    case GgmlType::Q4_0: return {QK, 2 + QK / 2};
    case GgmlType::Q4_1: return {QK, 4 + QK / 2};
    case GgmlType::Q5_0: return {QK, 6 + QK / 2};
    case GgmlType::Q5_1: return {QK, 8 + QK / 2};
    case GgmlType::Q8_0: return {QK, 2 + QK};
    case GgmlType::Q4_K: return {QK_K, 4 + 12 + QK_K / 2};
    case GgmlType::Q5_K: return {QK_K, 4 + 12 + QK_K / 8 + QK_K / 2};
    case GgmlType::Q6_K: return {QK_K, QK_K / 2 + QK_K / 4 + QK_K / 16 + 2};
  }
  fail("ggml type ", ggml_type_name(uint32_t(t)), " is not supported (supported: ", ggml_supported_types(), ")");
}

void dequantize(GgmlType t, const uint8_t* src, float* dst, int64_t n) {
  switch (t) {
    case GgmlType::F32: std::memcpy(dst, src, size_t(n) * 4); return;
    case GgmlType::F16: to_f32(DType::F16, src, dst, size_t(n)); return;
    case GgmlType::BF16: to_f32(DType::BF16, src, dst, size_t(n)); return;
    default: break;
  }
  const BlockKernel k = kernel_of(t);
  const GgmlBlock blk = ggml_block(t);
  if (n % blk.elements != 0) throw std::logic_error("dequantize: element count is not a whole number of blocks");
  const int64_t nb = n / blk.elements;
#pragma omp parallel for schedule(static) if (nb > 1024)
  for (int64_t i = 0; i < nb; ++i) k(src + i * blk.bytes, dst + i * blk.elements);
}

}  // namespace cascade
