// The model object behind cascade.Model: the engine's Model, placed as load() said, plus its
// tokenizer, loaded on first use so that a checkpoint without one still computes logits and traces.
// study_api.cc reads it too.
#pragma once
#include <memory>
#include <string>

#include "engine/attention_options.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace cascade::py {

class PyModel {
 public:
  // placement: device, dtype, cuda_graphs and attention_kernel (engine::place_model); cascade::Error where they cannot
  // be honoured or on a bad checkpoint.
  PyModel(const std::string& path, const engine::AttentionOptions& placement, const std::string& tokenizer);

  const Model& model() const { return *m_; }
  // The tokenizer named at load, else the model's own (model_tokenizer); cascade::Error if none.
  // Called with the GIL held, which serialises the lazy load.
  const Tokenizer& tokenizer();
  const std::string& path() const { return path_; }
  const std::string& tokenizer_path() const { return tokenizer_path_; }
  // A call's attention options on this model's device and dtype.
  engine::AttentionOptions placed(engine::AttentionOptions call) const;

 private:
  std::string path_, tokenizer_path_;
  engine::AttentionOptions placement_;
  std::unique_ptr<Model> m_;
  std::shared_ptr<Tokenizer> tok_;
};

}  // namespace cascade::py
