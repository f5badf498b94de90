// Reading a JSON file (config.json, model.safetensors.index.json) with errors that name the file.
#pragma once
#include <filesystem>

#include <nlohmann/json.hpp>

namespace cascade {

// Parses the whole file, which must hold a JSON object; a missing or unreadable file, malformed
// JSON or another top-level value is a cascade::Error naming the file (and the JSON error).
nlohmann::json read_json_file(const std::filesystem::path& path);

}  // namespace cascade
