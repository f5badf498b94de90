// SafetensorsFile: one .safetensors file (u64 little-endian header length N, N bytes of JSON
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}, then the data),
// memory-mapped and validated in full when opened, so that a bad file fails at load with a
// message naming it rather than later inside a matmul. F32, F16 and BF16 tensors are typed views
// into the map (load); load_f32 widens them. Other dtypes (I64, U8, F64, ...) are listed but
// cannot be loaded.
#pragma once
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/dtype.h"
#include "io/mmap_file.h"
#include "io/weights.h"

namespace cascade {

class SafetensorsFile {
 public:
  // Throws cascade::Error naming the file when it is unreadable or any header entry is invalid.
  explicit SafetensorsFile(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return file_->path(); }
  const MappedFile& mapped() const { return *file_; }
  std::vector<TensorMeta> list() const;                   // sorted by name
  const TensorMeta* find(const std::string& name) const;  // nullptr when absent
  // The tensor as stored, a view into the map. A rank-0 tensor comes back as shape [1], since
  // Tensor has no rank-0 form.
  TensorView load(const std::string& name) const;
  Tensor load_f32(const std::string& name) const { return widen_f32(load(name)); }
  const nlohmann::json& metadata() const { return metadata_; }  // "__metadata__", or {}

 private:
  struct Entry {
    TensorMeta meta;
    std::optional<DType> dtype;  // empty for dtypes that are not F32, F16 or BF16
    size_t offset;               // from the start of the file
  };
  std::shared_ptr<const MappedFile> file_;
  std::map<std::string, Entry> entries_;
  nlohmann::json metadata_ = nlohmann::json::object();
};

}  // namespace cascade
