// .npy parsing: magic, version, a Python-dict header with 'descr', 'fortran_order' and 'shape'.
// The header is parsed by hand because it is a Python literal, not JSON; by plain scanning, not
// std::regex, whose libstdc++ backtracking took quadratic time and deep recursion on fuzzed headers.
#include "io/npy.h"

#include <cctype>
#include <cstring>
#include <fstream>
#include <limits>

#include "core/error.h"

namespace cascade {

namespace {

const char kMagic[] = "\x93NUMPY";

// Item size of a dtype string: a byte order ('<', or '|' / '=' for one byte), a kind letter, then the
// size in bytes (1 to 16). Anything else (a big-endian '>i4', a structured or string dtype) is
// refused here, before its digits could be read as an absurd size.
size_t descr_size(const std::string& d, const std::string& name) {
  const bool ok = (d.size() == 3 || d.size() == 4) && (d[0] == '<' || d[0] == '|' || d[0] == '=') &&
                  std::isalpha(static_cast<unsigned char>(d[1])) &&
                  d.find_first_not_of("0123456789", 2) == std::string::npos && d[2] != '0';
  const size_t n = ok ? size_t(std::stoi(d.substr(2))) : 0;
  if (n == 0 || n > 16) fail(name, ": unsupported .npy dtype '", d, "' (need a little-endian number type such as '<i4')");
  return n;
}

// Where the value of 'key' starts in the header dict (after the colon and spaces), or npos.
size_t value_of(const std::string& header, const std::string& key) {
  size_t p = header.find("'" + key + "'");
  if (p == std::string::npos) return p;
  p = header.find_first_not_of(" ", p + key.size() + 2);
  if (p == std::string::npos || header[p] != ':') return std::string::npos;
  return header.find_first_not_of(" ", p + 1);
}

// The text between `open` and `close` that is the value of 'key' ('<i4' -> <i4, (2, 3) -> 2, 3).
std::string value_between(const std::string& header, const std::string& key, char open, char close,
                          const std::string& name) {
  const size_t p = value_of(header, key);
  const size_t end = p == std::string::npos || header[p] != open ? std::string::npos : header.find(close, p + 1);
  if (end == std::string::npos) fail(name, ": .npy header has no ", key);
  return header.substr(p + 1, end - p - 1);
}

// The dimensions of a shape tuple "(2, 3)", "(5,)" or "()"; at most 2^40 elements in all.
std::vector<int64_t> parse_shape(const std::string& tuple, const std::string& name) {
  std::vector<int64_t> shape;
  uint64_t n = 1;
  for (size_t p = tuple.find_first_not_of(" "); p != std::string::npos; p = tuple.find_first_not_of(" ", p)) {
    const size_t end = tuple.find_first_not_of("0123456789", p);
    const std::string digits = tuple.substr(p, end - p);
    if (digits.empty() || digits.size() > 13) fail(name, ": malformed .npy shape (", tuple, ")");
    const uint64_t d = std::stoull(digits);
    if (d != 0 && n > (uint64_t(1) << 40) / d) fail(name, ": .npy shape is implausibly large");
    n *= d;
    shape.push_back(int64_t(d));
    p = tuple.find_first_not_of(" ", end);
    if (p == std::string::npos) break;
    if (tuple[p] != ',') fail(name, ": malformed .npy shape (", tuple, ")");
    ++p;
  }
  return shape;
}

void write_npy(const std::filesystem::path& path, const std::string& descr, const std::vector<int64_t>& shape,
               const void* data, size_t elem) {
  std::string shp = "(";
  size_t n = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    shp += std::to_string(shape[i]) + (shape.size() == 1 ? "," : (i + 1 < shape.size() ? ", " : ""));
    n *= size_t(shape[i]);
  }
  shp += ")";
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shp + ", }";
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  if (!out) fail(path.string(), ": cannot open for writing");
  out.write(kMagic, 6);
  const char ver[2] = {1, 0};
  out.write(ver, 2);
  const uint16_t hl = uint16_t(header.size());
  out.write(reinterpret_cast<const char*>(&hl), 2);
  out.write(header.data(), std::streamsize(header.size()));
  out.write(static_cast<const char*>(data), std::streamsize(n * elem));
  if (!out) fail(path.string(), ": write failed");
}

}  // namespace

int64_t NpyArray::numel() const {
  int64_t n = 1;
  for (auto s : shape) n *= s;
  return n;
}

NpyArray parse_npy(const uint8_t* data, size_t size, const std::string& name) {
  if (size < 10 || std::memcmp(data, kMagic, 6) != 0) fail(name, ": not a .npy file (bad magic)");
  const int major = data[6];
  size_t hlen, off;
  if (major == 1) {
    hlen = size_t(data[8]) | (size_t(data[9]) << 8);
    off = 10;
  } else if (major == 2 || major == 3) {
    if (size < 12) fail(name, ": truncated .npy header");
    hlen = size_t(data[8]) | (size_t(data[9]) << 8) | (size_t(data[10]) << 16) | (size_t(data[11]) << 24);
    off = 12;
  } else {
    fail(name, ": unsupported .npy version ", major);
  }
  // numpy itself refuses headers over 10000 bytes (its max_header_size); so do we.
  if (hlen > 10000) fail(name, ": .npy header of ", hlen, " bytes is longer than numpy's limit of 10000");
  if (hlen > size - off) fail(name, ": truncated .npy header");
  const std::string header(reinterpret_cast<const char*>(data + off), hlen);
  NpyArray a;
  a.descr = value_between(header, "descr", '\'', '\'', name);
  const size_t fortran = value_of(header, "fortran_order");
  if (fortran != std::string::npos && header.compare(fortran, 4, "True") == 0)
    fail(name, ": Fortran-order .npy arrays are not supported");
  a.shape = parse_shape(value_between(header, "shape", '(', ')', name), name);
  uint64_t n = 1;
  for (int64_t d : a.shape) n *= uint64_t(d);
  const size_t elem = descr_size(a.descr, name);
  const size_t payload = size - off - hlen;
  if (payload < n * elem) fail(name, ": truncated .npy data (", payload, " bytes, shape needs ", n * elem, ")");
  a.bytes.assign(data + off + hlen, data + off + hlen + n * elem);
  return a;
}

NpyArray read_npy(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path.string(), ": cannot open");
  std::vector<uint8_t> buf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse_npy(buf.data(), buf.size(), path.string());
}

std::vector<int32_t> NpyArray::to_int32(const std::string& what) const {
  const size_t n = size_t(numel());
  std::vector<int32_t> out(n);
  auto get = [&](auto tag) {
    using T = decltype(tag);
    for (size_t i = 0; i < n; ++i) {
      T v;
      std::memcpy(&v, bytes.data() + i * sizeof(T), sizeof(T));
      if (v < T(std::numeric_limits<int32_t>::min()) || v > T(std::numeric_limits<int32_t>::max()))
        fail(what, ": value ", v, " does not fit int32");
      out[i] = int32_t(v);
    }
  };
  const std::string t = descr.substr(1);
  if (t == "i4") get(int32_t{});
  else if (t == "i8") get(int64_t{});
  else if (t == "i2") get(int16_t{});
  else if (t == "u2") get(uint16_t{});
  else if (t == "u4") get(uint32_t{});
  else fail(what, ": expected an integer .npy array, got dtype '", descr, "'");
  return out;
}

std::vector<float> NpyArray::to_float32(const std::string& what) const {
  const size_t n = size_t(numel());
  std::vector<float> out(n);
  const std::string t = descr.substr(1);
  if (t == "f4") {
    if (n) std::memcpy(out.data(), bytes.data(), n * 4);  // an empty array's data() may be null
  } else if (t == "f8") {
    for (size_t i = 0; i < n; ++i) {
      double v;
      std::memcpy(&v, bytes.data() + i * 8, 8);
      out[i] = float(v);
    }
  } else {
    fail(what, ": expected a float .npy array, got dtype '", descr, "'");
  }
  return out;
}

void write_npy_f32(const std::filesystem::path& path, const std::vector<int64_t>& shape, const float* data) {
  write_npy(path, "<f4", shape, data, 4);
}

void write_npy_i32(const std::filesystem::path& path, const std::vector<int64_t>& shape, const int32_t* data) {
  write_npy(path, "<i4", shape, data, 4);
}

}  // namespace cascade
