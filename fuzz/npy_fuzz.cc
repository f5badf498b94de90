// Fuzzes the .npy reader (parse_npy) and the conversions `cascade logits` applies to its ids.
#include "core/error.h"
#include "fuzz_support.h"
#include "io/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const cascade::NpyArray a = cascade::parse_npy(data, size, "ids.npy");
    cascade::fuzz::require(a.bytes.size() <= size);
    try {
      cascade::fuzz::require(a.to_int32("ids.npy").size() == size_t(a.numel()));
    } catch (const cascade::Error&) {
    }
    cascade::fuzz::require(a.to_float32("ids.npy").size() == size_t(a.numel()));
  } catch (const cascade::Error& e) {
    cascade::fuzz::printable(e);
  }
  return 0;
}
