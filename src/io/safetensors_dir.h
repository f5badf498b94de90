// SafetensorsDir: the weights of a Hugging Face checkpoint directory, either one
// model.safetensors or the shards listed in model.safetensors.index.json
// ({"weight_map": {tensor name: shard file}}). Every shard is opened (mapped and validated) up
// front, and every tensor the index names is checked to be in its shard, so a broken download
// fails at load with a message naming the index and the shard.
#pragma once
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "io/weights.h"

namespace cascade {

class SafetensorsDir : public WeightSource {
 public:
  explicit SafetensorsDir(const std::filesystem::path& dir);

  std::string path() const override { return dir_.string(); }
  std::vector<TensorMeta> list() const override;  // sorted by name
  bool has(const std::string& name) const override { return where_.count(name) != 0; }
  TensorView load(const std::string& name) const override;
  // The shard files and each one's __metadata__, for `cascade inspect`.
  nlohmann::json describe() const;

 private:
  std::filesystem::path dir_;
  std::map<std::string, SafetensorsFile> shards_;            // by file name; nodes never move
  std::map<std::string, const SafetensorsFile*> where_;      // tensor name -> its shard
};

}  // namespace cascade
