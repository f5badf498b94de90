// open_checkpoint dispatches on what the path is: a directory is a Hugging Face checkpoint
// (config.json + safetensors), a .bin file is llama2.c, a .gguf file is GGUF. Anything else is
// refused with the list of accepted formats, so a wrong path fails with one clear line instead of a
// parse error deep inside.
#include "io/checkpoint.h"

#include "core/error.h"
#include "io/gguf.h"
#include "io/json_file.h"
#include "io/llama2c.h"
#include "io/safetensors_dir.h"

namespace cascade {

namespace fs = std::filesystem;

namespace {

Checkpoint open_hf_directory(const fs::path& dir) {
  const fs::path config = dir / "config.json";
  if (!fs::is_regular_file(config)) fail(config.string(), ": missing (a Hugging Face checkpoint directory needs config.json)");
  Checkpoint ck;
  ck.config = read_json_file(config);
  auto weights = std::make_unique<SafetensorsDir>(dir);
  ck.format_metadata = weights->describe();
  ck.weights = std::move(weights);
  ck.tokenizer_dir = dir;
  ck.format = "safetensors";
  return ck;
}

}  // namespace

Checkpoint open_checkpoint(const fs::path& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (!fs::exists(st)) fail(path.string(), ": no such file or directory");
  if (fs::is_directory(st)) return open_hf_directory(path);
  if (path.extension() == ".bin") return open_llama2c(path);
  if (path.extension() == ".gguf") return open_gguf_checkpoint(path);
  fail(path.string(), ": unsupported model format; expected a Hugging Face checkpoint directory (config.json + "
       "model.safetensors or model.safetensors.index.json), a llama2.c .bin file or a .gguf file");
}

}  // namespace cascade
