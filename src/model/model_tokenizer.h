// The tokenizer of a model: the one named on the command line, else one carried inside the model
// file (GGUF), else the first find_tokenizer finds in the checkpoint's folder; otherwise an error
// naming that search.
#pragma once
#include <filesystem>
#include <memory>

#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace cascade {

std::shared_ptr<Tokenizer> model_tokenizer(const Model& m, const std::filesystem::path& model_path,
                                           const std::filesystem::path& explicit_path);

}  // namespace cascade
