// open_checkpoint: one entry point for every model format the engine reads. Each reader returns
// the weights under Hugging Face tensor names and a config.json-equivalent JSON object, so that the
// architecture table (arch/) and the decoder (model/) never see the on-disk format.
#pragma once
#include <filesystem>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "io/embedded_vocab.h"
#include "io/weights.h"

namespace cascade {

struct Checkpoint {
  nlohmann::json config;                  // as a Hugging Face config.json would hold it
  std::unique_ptr<WeightSource> weights;  // tensors by Hugging Face name
  std::filesystem::path tokenizer_dir;    // the folder a tokenizer may sit in beside the model
  std::optional<EmbeddedVocab> embedded_vocab;  // a vocabulary carried inside the file (GGUF)
  std::string format;                     // "safetensors", "llama2c", "gguf"
  nlohmann::json format_metadata;         // extra facts for `cascade inspect` (e.g. GGUF metadata)
};

// path: a Hugging Face checkpoint directory, a llama2.c .bin, or a .gguf file.
Checkpoint open_checkpoint(const std::filesystem::path& path);

}  // namespace cascade
