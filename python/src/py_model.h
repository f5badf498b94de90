// The model object behind cascade.Model: the engine's Model plus its tokenizer, loaded on first use
// so that a checkpoint without one still computes logits and traces. study.cc reads it too.
#pragma once
#include <memory>
#include <string>

#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace cascade::py {

class PyModel {
 public:
  // device: "cpu" (the only backend of this build); cascade::Error otherwise or on a bad checkpoint.
  PyModel(const std::string& path, const std::string& device, const std::string& tokenizer);

  const Model& model() const { return *m_; }
  // The tokenizer named at load, else the model's own (model_tokenizer); cascade::Error if none.
  // Called with the GIL held, which serialises the lazy load.
  const Tokenizer& tokenizer();
  const std::string& path() const { return path_; }
  const std::string& tokenizer_path() const { return tokenizer_path_; }

 private:
  std::string path_, tokenizer_path_;
  std::unique_ptr<Model> m_;
  std::shared_ptr<Tokenizer> tok_;
};

}  // namespace cascade::py
