// Shard resolution for SafetensorsDir. Shard names in the index must be plain file names in the
// directory: the index is untrusted input and must not point the reader elsewhere.
#include "io/safetensors_dir.h"

#include "core/error.h"
#include "io/json_file.h"

namespace cascade {

namespace fs = std::filesystem;

SafetensorsDir::SafetensorsDir(const fs::path& dir) : dir_(dir) {
  const fs::path index = dir / "model.safetensors.index.json";
  const fs::path single = dir / "model.safetensors";
  if (!fs::exists(index)) {
    if (!fs::exists(single)) {
      fail(dir.string(), ": no model.safetensors or model.safetensors.index.json",
           fs::exists(dir / "pytorch_model.bin") ? " (PyTorch .bin weights are not supported; convert them to safetensors)" : "");
    }
    const auto& file = shards_.emplace(single.filename().string(), SafetensorsFile(single)).first->second;
    for (const auto& meta : file.list()) where_.emplace(meta.name, &file);
    return;
  }

  const nlohmann::json j = read_json_file(index);
  const auto map = j.find("weight_map");
  if (map == j.end() || !map->is_object()) fail(index.string(), ": no \"weight_map\" object");
  if (map->empty()) fail(index.string(), ": \"weight_map\" lists no tensors");
  for (const auto& [name, shard_json] : map->items()) {
    if (!shard_json.is_string()) fail(index.string(), ": weight_map entry for '", name, "' is not a file name");
    const std::string shard = shard_json.get<std::string>();
    if (shard.empty() || fs::path(shard).filename() != fs::path(shard) || shard == "." || shard == "..")
      fail(index.string(), ": shard '", shard, "' (for '", name, "') is not a plain file name in the directory");
    auto it = shards_.find(shard);
    if (it == shards_.end()) {
      if (!fs::exists(dir / shard)) fail(index.string(), ": names shard '", shard, "' (for '", name, "'), which is missing from ", dir.string());
      it = shards_.emplace(shard, SafetensorsFile(dir / shard)).first;
    }
    if (!it->second.find(name))
      fail(index.string(), ": lists tensor '", name, "' in ", shard, ", but ", (dir / shard).string(), " has no such tensor");
    where_.emplace(name, &it->second);
  }
}

std::vector<TensorMeta> SafetensorsDir::list() const {
  std::vector<TensorMeta> out;
  out.reserve(where_.size());
  for (const auto& [name, file] : where_) out.push_back(*file->find(name));
  return out;
}

TensorView SafetensorsDir::load(const std::string& name) const {
  const auto it = where_.find(name);
  if (it == where_.end()) fail(dir_.string(), ": checkpoint has no tensor named '", name, "'");
  return it->second->load(name);
}

nlohmann::json SafetensorsDir::describe() const {
  nlohmann::json files = nlohmann::json::array();
  for (const auto& [name, file] : shards_) files.push_back({{"file", name}, {"metadata", file.metadata()}});
  return {{"files", files}, {"tensors", where_.size()}};
}

}  // namespace cascade
