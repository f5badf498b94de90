// WeightSource: the one interface every checkpoint format implements (safetensors directory,
// llama2.c .bin, GGUF). The model asks it for tensors by Hugging Face name and gets float32
// (a view into the memory map when stored as f32, a widened or dequantized copy otherwise).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace cascade {

// What a checkpoint says about one stored tensor, for `cascade inspect` and shape checks.
struct TensorMeta {
  std::string name;
  std::string dtype;  // as stored: "F32", "BF16", "Q4_K", ...
  std::vector<int64_t> shape;
  uint64_t nbytes = 0;
};

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  virtual std::string path() const = 0;  // for error messages
  virtual std::vector<TensorMeta> list() const = 0;
  virtual bool has(const std::string& name) const = 0;
  // Float32 copy or view of the tensor; throws cascade::Error naming the file when absent or
  // unreadable. The shape is as stored (e.g. GPT-2's Conv1D weights are [in, out]).
  virtual Tensor load_f32(const std::string& name) const = 0;
};

}  // namespace cascade
