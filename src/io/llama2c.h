// llama2.c checkpoints (Karpathy's legacy export: a 7 x int32 header, then float32 weights in a
// fixed order). Exposed under Hugging Face Llama names with a config.json-equivalent, so the rest
// of the engine treats a stories*.bin like any Llama: q/k rows are reordered from llama2.c's
// interleaved rotary layout to Hugging Face's halves (see rotary_layout.h), everything else is a
// view into the memory map.
#pragma once
#include <filesystem>

#include "io/checkpoint.h"

namespace cascade {

// Opens a llama2.c .bin. The file size must equal exactly what the header implies. Its tokenizer
// (tokenizer.bin or tok<vocab>.bin) is looked for in its folder, as for every format.
// Throws cascade::Error naming the file on any inconsistency.
Checkpoint open_llama2c(const std::filesystem::path& path);

}  // namespace cascade
