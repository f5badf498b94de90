// WeightSource: the one interface every checkpoint format implements (safetensors directory,
// llama2.c .bin, GGUF). The model asks it for tensors by Hugging Face name and gets them as stored
// (load: a typed view of the memory map, F32, F16 or BF16, nothing copied), so that a GPU upload
// reads the file's own bytes; the CPU engine widens them to float32 (load_f32: a view of the map
// when stored as aligned f32, a widened copy otherwise). Tensors no view can express (quantised
// GGUF types, rows reordered to Hugging Face's rotary layout) are decoded into owned float32.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"

namespace cascade {

// What a checkpoint says about one stored tensor, for `cascade inspect` and shape checks.
struct TensorMeta {
  std::string name;
  std::string dtype;  // as stored: "F32", "BF16", "Q4_K", ...
  std::vector<int64_t> shape;
  uint64_t nbytes = 0;
};

// A tensor's bytes in its stored dtype, row-major. data may be unaligned (a safetensors header of
// any length puts the data region anywhere), so read it with memcpy or through widen_f32.
struct TensorView {
  DType dtype = DType::F32;           // F32, F16 or BF16
  const void* data = nullptr;
  std::vector<int64_t> shape;         // a rank-0 tensor has shape [1]
  std::shared_ptr<const void> owner;  // keeps data alive: the memory map, or a decoded copy
  // data lies in a read-only file mapping: its pages may be dropped from the process once read
  // (MappedFile::drop_pages) and come back from the file on the next read.
  bool mapped = false;

  int64_t numel() const;  // 0 for an empty view
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype); }
  bool empty() const { return data == nullptr; }
};

// Float32 tensor of a view: the view itself when it is aligned F32, a widened copy otherwise.
Tensor widen_f32(const TensorView& v);

// A float32 tensor owned by the returned view (decoded data: dequantised, reordered).
TensorView owned_view(Tensor t);

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  virtual std::string path() const = 0;  // for error messages
  virtual std::vector<TensorMeta> list() const = 0;
  virtual bool has(const std::string& name) const = 0;
  // The tensor as stored; throws cascade::Error naming the file when absent or of a dtype that is
  // not a float (I64, ...). The shape is as stored (e.g. GPT-2's Conv1D weights are [in, out]).
  virtual TensorView load(const std::string& name) const = 0;
  // widen_f32(load(name)).
  Tensor load_f32(const std::string& name) const { return widen_f32(load(name)); }
};

}  // namespace cascade
