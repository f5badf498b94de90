// Fuzzes the safetensors reader: header length, header JSON, the tensor table (dtypes, shapes,
// offsets, overlaps) and loading every float tensor as float32. Seeds: fixture files cut down to
// their small tensors (fuzz/make_corpus.py).
#include "core/error.h"
#include "fuzz_support.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const cascade::SafetensorsFile f(cascade::fuzz::memory_file(data, size));
    for (const auto& meta : f.list()) {
      cascade::fuzz::require(f.find(meta.name) != nullptr && meta.nbytes <= size);
      if (meta.dtype == "F32" || meta.dtype == "F16" || meta.dtype == "BF16") {
        const cascade::Tensor t = f.load_f32(meta.name);
        cascade::fuzz::require(uint64_t(t.numel()) * (meta.dtype == "F32" ? 4 : 2) == meta.nbytes || meta.shape.empty());
      }
    }
  } catch (const cascade::Error& e) {
    cascade::fuzz::printable(e);
  }
  return 0;
}
