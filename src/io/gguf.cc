// GGUF parsing and validation. Every count and length read from the file is checked against the
// bytes that remain before it is used, so a corrupt header (a string length of 2^60, a tensor count
// of 2^40) is an error, never an allocation. Metadata arrays are walked once here to find their end
// and are decoded again only when a caller asks for them: the vocabulary arrays are large and most
// callers (inspect) need only their length.
#include "io/gguf.h"

#include <cstring>

#include "core/error.h"
#include "core/utf8.h"

namespace cascade {

namespace {

constexpr size_t kMaxDims = 4;  // GGML_MAX_DIMS

size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::U8:
    case GgufType::I8:
    case GgufType::BOOL: return 1;
    case GgufType::U16:
    case GgufType::I16: return 2;
    case GgufType::U32:
    case GgufType::I32:
    case GgufType::F32: return 4;
    case GgufType::U64:
    case GgufType::I64:
    case GgufType::F64: return 8;
    case GgufType::STRING:
    case GgufType::ARRAY: return 0;
  }
  return 0;
}

// Bounds-checked little-endian cursor over the mapped file.
class Reader {
 public:
  Reader(const uint8_t* data, uint64_t size, std::string name) : p_(data), size_(size), name_(std::move(name)) {}

  uint64_t pos() const { return pos_; }
  uint64_t left() const { return size_ - pos_; }
  void seek(uint64_t pos) { pos_ = pos; }

  void need(uint64_t n, const std::string& what) const {
    if (n > left())
      fail(name_, ": truncated GGUF file: ", what, " needs ", n, " bytes at offset ", pos_, " but the file ends ",
           left(), " bytes later");
  }
  template <typename T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string string(const std::string& what) {
    const uint64_t n = read<uint64_t>(what + " (string length)");
    if (n > left())
      fail(name_, ": ", what, ": string length ", n, " exceeds the ", left(),
           " bytes left in the file (corrupt or truncated)");
    std::string s(reinterpret_cast<const char*>(p_ + pos_), size_t(n));
    pos_ += n;
    return s;
  }
  void skip(uint64_t n, const std::string& what) {
    need(n, what);
    pos_ += n;
  }

 private:
  const uint8_t* p_;
  uint64_t size_;
  uint64_t pos_ = 0;
  std::string name_;
};

GgufType value_type(Reader& r, const std::string& name, const std::string& what) {
  const uint32_t t = r.read<uint32_t>(what + " (type)");
  if (t > uint32_t(GgufType::F64)) fail(name, ": ", what, " has unknown GGUF value type ", t);
  return GgufType(t);
}

GgufValue read_value(Reader& r, GgufType type, const std::string& name, const std::string& what) {
  GgufValue v{type, uint64_t(0)};
  switch (type) {
    case GgufType::U8: v.value = uint64_t(r.read<uint8_t>(what)); break;
    case GgufType::U16: v.value = uint64_t(r.read<uint16_t>(what)); break;
    case GgufType::U32: v.value = uint64_t(r.read<uint32_t>(what)); break;
    case GgufType::U64: v.value = r.read<uint64_t>(what); break;
    case GgufType::I8: v.value = int64_t(r.read<int8_t>(what)); break;
    case GgufType::I16: v.value = int64_t(r.read<int16_t>(what)); break;
    case GgufType::I32: v.value = int64_t(r.read<int32_t>(what)); break;
    case GgufType::I64: v.value = r.read<int64_t>(what); break;
    case GgufType::F32: v.value = double(r.read<float>(what)); break;
    case GgufType::F64: v.value = r.read<double>(what); break;
    case GgufType::BOOL: v.value = r.read<uint8_t>(what) != 0; break;
    case GgufType::STRING: v.value = r.string(what); break;
    case GgufType::ARRAY: {
      const GgufType elem = value_type(r, name, what + " (array element type)");
      if (elem == GgufType::ARRAY) fail(name, ": ", what, " is an array of arrays, which is not supported");
      const uint64_t count = r.read<uint64_t>(what + " (array length)");
      // Each string element takes at least its 8-byte length.
      const uint64_t min_size = elem == GgufType::STRING ? 8 : scalar_size(elem);
      if (count > r.left() / min_size)
        fail(name, ": ", what, ": array length ", count, " of ", gguf_type_name(elem), " exceeds the ", r.left(),
             " bytes left in the file (corrupt or truncated)");
      const GgufArray a{elem, count, r.pos()};
      if (elem == GgufType::STRING) {
        for (uint64_t i = 0; i < count; ++i) r.skip(r.read<uint64_t>(what), what + " (string element)");
      } else {
        r.skip(count * min_size, what);
      }
      v.value = a;
      break;
    }
  }
  return v;
}

uint64_t checked_mul(uint64_t a, uint64_t b, const std::string& name, const std::string& what) {
  if (a != 0 && b > (uint64_t(1) << 62) / a) fail(name, ": ", what, " is impossibly large");
  return a * b;
}

}  // namespace

std::string gguf_type_name(GgufType t) {
  static const char* const kNames[] = {"UINT8", "INT8",   "UINT16", "INT16",  "UINT32", "INT32",  "FLOAT32",
                                       "BOOL",  "STRING", "ARRAY",  "UINT64", "INT64",  "FLOAT64"};
  return kNames[size_t(t)];
}

int64_t GgufTensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  return n;
}

std::shared_ptr<const GgufFile> GgufFile::open(const std::filesystem::path& path) {
  auto map = MappedFile::open(path);
  const std::string name = path.string();
  std::shared_ptr<GgufFile> f(new GgufFile(map));
  Reader r(map->data(), map->size(), name);

  r.need(4, "the magic");
  if (std::memcmp(map->data(), "GGUF", 4) != 0) {
    std::string magic(reinterpret_cast<const char*>(map->data()), 4);
    for (char& c : magic) c = (c >= 32 && c < 127) ? c : '?';
    fail(name, ": not a GGUF file (starts with '", magic, "', expected 'GGUF')");
  }
  r.skip(4, "the magic");
  f->version_ = r.read<uint32_t>("the version");
  if (f->version_ != 2 && f->version_ != 3) {
    if ((f->version_ & 0xFFFF) == 0 && __builtin_bswap32(f->version_) - 1 < 3)
      fail(name, ": big-endian GGUF files are not supported");
    if (f->version_ == 1)
      fail(name, ": GGUF version 1 (the 2023 draft format) is not supported; convert the model again");
    fail(name, ": unknown GGUF version ", f->version_, " (Cascade reads versions 2 and 3)");
  }
  const uint64_t n_tensors = r.read<uint64_t>("the tensor count");
  const uint64_t n_kv = r.read<uint64_t>("the metadata count");
  // A key/value takes at least 8 + 4 + 1 bytes and a tensor info 8 + 4 + 4 + 8.
  if (n_kv > r.left() / 13)
    fail(name, ": metadata count ", n_kv, " is impossible for a file of ", map->size(), " bytes");
  if (n_tensors > r.left() / 24)
    fail(name, ": tensor count ", n_tensors, " is impossible for a file of ", map->size(), " bytes");

  for (uint64_t i = 0; i < n_kv; ++i) {
    const std::string key = r.string("metadata key #" + std::to_string(i));
    const std::string what = "metadata '" + key + "'";
    GgufValue v = read_value(r, value_type(r, name, what), name, what);
    if (!f->kv_index_.emplace(key, f->kv_.size()).second) fail(name, ": metadata key '", key, "' appears twice");
    f->kv_.emplace_back(key, std::move(v));
  }
  if (const auto a = f->get_uint("general.alignment")) {
    if (*a == 0 || (*a & (*a - 1)) != 0 || *a > (uint64_t(1) << 30))
      fail(name, ": general.alignment is ", *a, ", not a power of two up to 2^30");
    f->alignment_ = *a;
  }

  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t;
    t.name = r.string("tensor #" + std::to_string(i) + " name");
    // GGUF strings are UTF-8; a tensor name is looked up and listed (`cascade inspect --json`).
    if (!is_valid_utf8(t.name)) fail(name, ": tensor #", i, " name '", t.name, "' is not valid UTF-8");
    const std::string what = "tensor '" + t.name + "'";
    const uint32_t n_dims = r.read<uint32_t>(what + " (dimension count)");
    if (n_dims == 0 || n_dims > kMaxDims) fail(name, ": ", what, " has ", n_dims, " dimensions (GGUF allows 1 to 4)");
    uint64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t ne = r.read<uint64_t>(what + " (dimensions)");
      numel = checked_mul(numel, ne, name, what + " element count");
      t.ne.push_back(int64_t(ne));
    }
    const uint32_t type = r.read<uint32_t>(what + " (type)");
    if (!ggml_type_supported(type))
      fail(name, ": ", what, " is stored as ", ggml_type_name(type),
           ", which Cascade cannot read (supported: ", ggml_supported_types(), ")");
    t.type = GgmlType(type);
    const GgmlBlock blk = ggml_block(t.type);
    if (t.ne[0] % blk.elements != 0)
      fail(name, ": ", what, " has ", t.ne[0], " columns, not a multiple of the ", ggml_type_name(type), " block size ",
           blk.elements);
    t.nbytes = numel / uint64_t(blk.elements) * uint64_t(blk.bytes);
    t.offset = r.read<uint64_t>(what + " (offset)");
    if (t.offset % f->alignment_ != 0)
      fail(name, ": ", what, " data offset ", t.offset, " is not a multiple of the alignment ", f->alignment_);
    if (!f->tensor_index_.emplace(t.name, f->tensors_.size()).second)
      fail(name, ": tensor '", t.name, "' appears twice");
    f->tensors_.push_back(std::move(t));
  }

  // The data section starts at the next multiple of the alignment after the tensor infos.
  f->data_start_ = (r.pos() + f->alignment_ - 1) / f->alignment_ * f->alignment_;
  const uint64_t data_size = map->size() >= f->data_start_ ? map->size() - f->data_start_ : 0;
  for (const auto& t : f->tensors_) {
    if (t.offset > data_size || t.nbytes > data_size - t.offset)
      fail(name, ": tensor '", t.name, "' data (", t.nbytes, " bytes at data offset ", t.offset,
           ") extends beyond the end of the file (the data section holds ", data_size, " bytes; truncated?)");
  }
  return f;
}

const GgufTensorInfo* GgufFile::find_tensor(const std::string& name) const {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const GgufValue* GgufFile::find(const std::string& key) const {
  const auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

void GgufFile::missing(const std::string& key) const { fail(path(), ": GGUF metadata key '", key, "' is missing"); }

void GgufFile::wrong_type(const std::string& key, const GgufValue& v, const char* expected) const {
  std::string got = gguf_type_name(v.type);
  if (const auto* a = std::get_if<GgufArray>(&v.value)) got += " of " + gguf_type_name(a->elem);
  fail(path(), ": GGUF metadata key '", key, "' holds ", got, ", expected ", expected);
}

std::optional<uint64_t> GgufFile::get_uint(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (const auto* u = std::get_if<uint64_t>(&v->value)) return *u;
  if (const auto* i = std::get_if<int64_t>(&v->value)) {
    if (*i < 0) fail(path(), ": GGUF metadata key '", key, "' is ", *i, ", expected a non-negative integer");
    return uint64_t(*i);
  }
  wrong_type(key, *v, "an integer");
}

std::optional<double> GgufFile::get_float(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (const auto* d = std::get_if<double>(&v->value)) return *d;
  wrong_type(key, *v, "a float");
}

std::optional<bool> GgufFile::get_bool(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (const auto* b = std::get_if<bool>(&v->value)) return *b;
  wrong_type(key, *v, "a bool");
}

std::optional<std::string> GgufFile::get_string(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (const auto* s = std::get_if<std::string>(&v->value)) return *s;
  wrong_type(key, *v, "a string");
}

std::optional<std::vector<std::string>> GgufFile::get_string_array(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  const auto* a = std::get_if<GgufArray>(&v->value);
  if (!a || a->elem != GgufType::STRING) wrong_type(key, *v, "an array of STRING");
  Reader r(map_->data(), map_->size(), path());
  r.seek(a->offset);
  std::vector<std::string> out;
  out.reserve(size_t(a->count));  // bounded by the file size at open
  for (uint64_t i = 0; i < a->count; ++i) out.push_back(r.string(key));
  return out;
}

std::optional<std::vector<float>> GgufFile::get_float_array(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  const auto* a = std::get_if<GgufArray>(&v->value);
  if (!a || (a->elem != GgufType::F32 && a->elem != GgufType::F64)) wrong_type(key, *v, "an array of FLOAT32");
  Reader r(map_->data(), map_->size(), path());
  r.seek(a->offset);
  std::vector<float> out(size_t(a->count));
  for (float& x : out) x = a->elem == GgufType::F32 ? r.read<float>(key) : float(r.read<double>(key));
  return out;
}

std::optional<std::vector<int64_t>> GgufFile::get_int_array(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  const auto* a = std::get_if<GgufArray>(&v->value);
  if (!a || a->elem == GgufType::STRING || a->elem == GgufType::F32 || a->elem == GgufType::F64 ||
      a->elem == GgufType::BOOL)
    wrong_type(key, *v, "an array of integers");
  Reader r(map_->data(), map_->size(), path());
  r.seek(a->offset);
  std::vector<int64_t> out;
  out.reserve(size_t(a->count));
  for (uint64_t i = 0; i < a->count; ++i) {
    const GgufValue e = read_value(r, a->elem, path(), key);
    if (const auto* u = std::get_if<uint64_t>(&e.value))
      out.push_back(int64_t(*u));
    else
      out.push_back(std::get<int64_t>(e.value));
  }
  return out;
}

nlohmann::json GgufFile::metadata_json(size_t max_array) const {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& entry : kv_) {
    // Metadata is shown by `cascade inspect --json`; bytes that are not UTF-8 (nlohmann's dump()
    // throws on them) are shown as \xNN. Not a structured binding: clang 14 cannot capture one.
    const std::string key = escape_invalid_utf8(entry.first);
    const GgufValue& v = entry.second;
    std::visit(
        [&](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, std::string>) {
            out[key] = escape_invalid_utf8(x);
          } else if constexpr (!std::is_same_v<T, GgufArray>) {
            out[key] = x;
          } else if (x.count > max_array) {
            std::string summary = "[";  // built in steps: GCC 12 warns falsely on "[" + to_string(...)
            summary += std::to_string(x.count) + " x " + gguf_type_name(x.elem) + "]";
            out[key] = summary;
          } else {
            Reader r(map_->data(), map_->size(), path());
            r.seek(x.offset);
            nlohmann::json arr = nlohmann::json::array();
            for (uint64_t i = 0; i < x.count; ++i)
              std::visit(
                  [&](const auto& e) {
                    using E = std::decay_t<decltype(e)>;
                    if constexpr (std::is_same_v<E, std::string>) arr.push_back(escape_invalid_utf8(e));
                    else if constexpr (!std::is_same_v<E, GgufArray>) arr.push_back(e);
                  },
                  read_value(r, x.elem, path(), key).value);
            out[key] = std::move(arr);
          }
        },
        v.value);
  }
  return out;
}

}  // namespace cascade
