// GGUF (llama.cpp's single-file checkpoint format), versions 2 and 3: a header, typed metadata
// key/values, tensor infos, then an aligned data section. GgufFile validates the whole layout at
// open (so a truncated or hostile file is a cascade::Error before anything is allocated from its
// counts) and leaves tensor data and metadata arrays in the memory map until asked for.
// open_gguf_checkpoint turns a llama-architecture file into a Checkpoint under Hugging Face names.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "io/checkpoint.h"
#include "io/gguf_dequant.h"
#include "io/mmap_file.h"

namespace cascade {

// GGUF metadata value types (gguf_type in ggml's gguf.h).
enum class GgufType : uint32_t { U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 };
std::string gguf_type_name(GgufType t);

// An array stays in the file: its elements are decoded by the typed accessors of GgufFile.
struct GgufArray {
  GgufType elem;
  uint64_t count;
  uint64_t offset;  // file offset of the first element
};

// Unsigned integers widen to uint64_t, signed ones to int64_t, floats to double.
struct GgufValue {
  GgufType type;
  std::variant<uint64_t, int64_t, double, bool, std::string, GgufArray> value;
};

struct GgufTensorInfo {
  std::string name;
  GgmlType type;
  std::vector<int64_t> ne;  // dimensions fastest-varying first, as ggml lists them (ne[0] = columns)
  uint64_t offset;          // from the start of the data section
  uint64_t nbytes;
  int64_t numel() const;
};

class GgufFile {
 public:
  // Maps and validates the file; every defect is a cascade::Error naming the file.
  static std::shared_ptr<const GgufFile> open(const std::filesystem::path& path);

  std::string path() const { return map_->path().string(); }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(const std::string& name) const;
  const uint8_t* tensor_data(const GgufTensorInfo& t) const { return map_->data() + data_start_ + t.offset; }
  // Keeps the mapping alive for tensors that view it.
  std::shared_ptr<const void> owner() const { return map_; }

  // Typed metadata: nullopt when the key is absent, a cascade::Error naming the key when it holds
  // another type. Integers of any width and signedness are accepted where they fit.
  std::optional<uint64_t> get_uint(const std::string& key) const;
  std::optional<double> get_float(const std::string& key) const;
  std::optional<bool> get_bool(const std::string& key) const;
  std::optional<std::string> get_string(const std::string& key) const;
  std::optional<std::vector<std::string>> get_string_array(const std::string& key) const;
  std::optional<std::vector<float>> get_float_array(const std::string& key) const;
  std::optional<std::vector<int64_t>> get_int_array(const std::string& key) const;
  // The value of a key that must be present.
  template <typename T>
  T require(const std::optional<T>& v, const std::string& key) const {
    if (!v) missing(key);
    return *v;
  }

  // The metadata as JSON, arrays longer than max_array summarised as "[N x TYPE]".
  nlohmann::json metadata_json(size_t max_array) const;

 private:
  explicit GgufFile(std::shared_ptr<const MappedFile> map) : map_(std::move(map)) {}
  const GgufValue* find(const std::string& key) const;
  [[noreturn]] void missing(const std::string& key) const;
  [[noreturn]] void wrong_type(const std::string& key, const GgufValue& v, const char* expected) const;

  std::shared_ptr<const MappedFile> map_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;  // GGUF_DEFAULT_ALIGNMENT, unless general.alignment says otherwise
  uint64_t data_start_ = 0;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::map<std::string, size_t> kv_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

// A .gguf file of the llama architecture as a Checkpoint: weights under Hugging Face Llama names
// (Q and K rows restored to Hugging Face's rotary layout), a LlamaConfig-style config, the
// embedded tokenizer, and the metadata for `cascade inspect`. Other architectures are an error.
Checkpoint open_gguf_checkpoint(const std::filesystem::path& path);

}  // namespace cascade
