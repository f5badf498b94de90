// NumPy .npy files (format versions 1.0 to 3.0, C order, little-endian): the exchange format of
// `cascade logits` and of the reference fixtures written by scripts/make_fixtures.py.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace cascade {

struct NpyArray {
  std::string descr;            // numpy dtype string, e.g. "<i4", "<f4", "<u2"
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;   // raw little-endian payload
  int64_t numel() const;
  // The payload converted to int32 (from i4, i8, u2, u4, i2) / float32 (from f4, f8);
  // throws cascade::Error naming the file for other dtypes or out-of-range values.
  std::vector<int32_t> to_int32(const std::string& what) const;
  std::vector<float> to_float32(const std::string& what) const;
};

// Reads a whole .npy file; a missing, truncated or malformed file is a cascade::Error.
NpyArray read_npy(const std::filesystem::path& path);
// Parses .npy bytes already in memory (name is used in messages).
NpyArray parse_npy(const uint8_t* data, size_t size, const std::string& name);

void write_npy_f32(const std::filesystem::path& path, const std::vector<int64_t>& shape, const float* data);
void write_npy_i32(const std::filesystem::path& path, const std::vector<int64_t>& shape, const int32_t* data);

}  // namespace cascade
