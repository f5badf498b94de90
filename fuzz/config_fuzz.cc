// Fuzzes config.json as the CLI reads it: read_json_file (any bytes) then arch_from_config (any
// JSON object): every field of every family may be missing, of the wrong type or out of range,
// and must give a cascade::Error, never a json exception or an overflow.
#include "arch/arch_spec.h"
#include "core/error.h"
#include "fuzz_support.h"
#include "io/json_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const nlohmann::json config = cascade::read_json_file(cascade::fuzz::memory_file(data, size));
    (void)cascade::arch_from_config(config, "config.json").describe();
  } catch (const cascade::Error& e) {
    cascade::fuzz::printable(e);
  }
  return 0;
}
