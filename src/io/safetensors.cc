// Safetensors validation. Every header number is untrusted: the header length is checked against
// the file and a cap before parsing, offsets against the data region, and the shape's byte count
// (computed with overflow checks) against the byte count the offsets give, so an absurd shape
// (2^40 elements, or a product past 2^64) is rejected before anything is allocated.
#include "io/safetensors.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>

#include "core/error.h"

namespace cascade {

namespace {

using nlohmann::json;

// Real headers are kilobytes to a few megabytes; the Rust reference implementation caps at 100 MB.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct DTypeInfo {
  const char* name;
  size_t size;
  std::optional<DType> loadable;
};

// Every dtype safetensors defines with a whole-byte element; only the float ones load as float32.
constexpr DTypeInfo kDTypes[] = {
    {"F32", 4, DType::F32},  {"F16", 2, DType::F16},  {"BF16", 2, DType::BF16},
    {"F64", 8, std::nullopt}, {"I64", 8, std::nullopt}, {"U64", 8, std::nullopt},
    {"I32", 4, std::nullopt}, {"U32", 4, std::nullopt}, {"I16", 2, std::nullopt},
    {"U16", 2, std::nullopt}, {"I8", 1, std::nullopt},  {"U8", 1, std::nullopt},
    {"BOOL", 1, std::nullopt}, {"F8_E4M3", 1, std::nullopt}, {"F8_E5M2", 1, std::nullopt},
};

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

uint64_t get_unsigned(const json& v, const std::string& file, const std::string& key, const char* what) {
  if (!v.is_number_unsigned()) fail(file, ": tensor '", key, "': ", what, " must be non-negative integers, got ", v.dump());
  return v.get<uint64_t>();
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::filesystem::path& path) : file_(MappedFile::open(path)) {
  const std::string file = path.string();
  const uint8_t* base = file_->data();
  const uint64_t size = file_->size();
  if (size < 8) fail(file, ": not a safetensors file (", size, " bytes, too short for the header length)");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(base[i]) << (8 * i);
  if (n > kMaxHeaderBytes) fail(file, ": safetensors header length ", n, " exceeds the ", kMaxHeaderBytes, "-byte limit (not a safetensors file?)");
  if (n > size - 8) fail(file, ": safetensors header length ", n, " is larger than the rest of the file (", size - 8, " bytes); truncated or not a safetensors file");

  json header;
  try {
    header = json::parse(base + 8, base + 8 + n);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e400
    fail(file, ": malformed safetensors header JSON: ", e.what());
  }
  if (!header.is_object()) fail(file, ": safetensors header is not a JSON object");

  const uint64_t data_start = 8 + n;
  const uint64_t data_size = size - data_start;
  for (const auto& item : header.items()) {
    const std::string& key = item.key();  // not a structured binding: clang 14 cannot capture one
    const json& v = item.value();
    if (key == "__metadata__") {
      if (!v.is_object()) fail(file, ": safetensors __metadata__ is not a JSON object");
      metadata_ = v;
      continue;
    }
    auto bad = [&](const auto&... parts) { fail(file, ": tensor '", key, "': ", parts...); };
    if (!v.is_object()) bad("header entry is not a JSON object");
    const auto dt = v.find("dtype");
    const auto sh = v.find("shape");
    const auto off = v.find("data_offsets");
    if (dt == v.end() || !dt->is_string()) bad("missing or non-string dtype");
    if (sh == v.end() || !sh->is_array()) bad("missing or non-array shape");
    if (off == v.end() || !off->is_array() || off->size() != 2) bad("data_offsets must be [begin, end]");

    const std::string dname = dt->get<std::string>();
    const auto info = std::find_if(std::begin(kDTypes), std::end(kDTypes), [&](const DTypeInfo& d) { return dname == d.name; });
    if (info == std::end(kDTypes)) bad("unknown dtype '", dname, "'");

    const uint64_t begin = get_unsigned((*off)[0], file, key, "data_offsets");
    const uint64_t end = get_unsigned((*off)[1], file, key, "data_offsets");
    if (begin > end) bad("data_offsets [", begin, ", ", end, "] end before they begin");
    if (end > data_size) bad("data_offsets [", begin, ", ", end, "] extend past the end of the data (", data_size, " bytes); the file is truncated or the header is wrong");

    Entry e{TensorMeta{key, dname, {}, end - begin}, info->loadable, size_t(data_start + begin)};
    bool has_zero = false;
    for (const auto& d : *sh) {
      const uint64_t dim = get_unsigned(d, file, key, "shape dimensions");
      if (dim > uint64_t(std::numeric_limits<int64_t>::max())) bad("shape dimension ", dim, " is too large");
      has_zero |= dim == 0;
      e.meta.shape.push_back(int64_t(dim));
    }
    // Bytes the shape needs, with overflow detected rather than wrapped into a plausible number.
    uint64_t need = info->size;
    bool overflow = false;
    for (int64_t d : e.meta.shape) overflow |= __builtin_mul_overflow(need, uint64_t(d), &need);
    if (has_zero) need = 0, overflow = false;
    if (overflow) bad("shape ", shape_str(e.meta.shape), " of ", dname, " is larger than 2^64 bytes");
    if (need != end - begin) bad("shape ", shape_str(e.meta.shape), " of ", dname, " needs ", need, " bytes but its data_offsets give ", end - begin);
    entries_.emplace(key, std::move(e));
  }

  // No two tensors may share bytes (empty tensors occupy none).
  std::vector<const Entry*> by_offset;
  for (const auto& [_, e] : entries_)
    if (e.meta.nbytes) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const Entry* a, const Entry* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const Entry& a = *by_offset[i - 1];
    const Entry& b = *by_offset[i];
    if (b.offset < a.offset + a.meta.nbytes) fail(file, ": tensors '", a.meta.name, "' and '", b.meta.name, "' overlap in the data region");
  }
}

std::vector<TensorMeta> SafetensorsFile::list() const {
  std::vector<TensorMeta> out;
  out.reserve(entries_.size());
  for (const auto& [_, e] : entries_) out.push_back(e.meta);
  return out;
}

const TensorMeta* SafetensorsFile::find(const std::string& name) const {
  const auto it = entries_.find(name);
  return it == entries_.end() ? nullptr : &it->second.meta;
}

TensorView SafetensorsFile::load(const std::string& name) const {
  const auto it = entries_.find(name);
  if (it == entries_.end()) fail(path().string(), ": no tensor named '", name, "'");
  const Entry& e = it->second;
  if (!e.dtype) fail(path().string(), ": tensor '", name, "' is ", e.meta.dtype, ", which cannot be loaded as float32");
  std::vector<int64_t> shape = e.meta.shape.empty() ? std::vector<int64_t>{1} : e.meta.shape;
  return TensorView{*e.dtype, file_->data() + e.offset, std::move(shape), file_, true};
}

}  // namespace cascade
