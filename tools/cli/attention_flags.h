// The engine's attention and device options (engine/attention_options.h) as the flags of
// generate, perplexity, logits and bench: one flag per row of the engine's table, each value set
// (and checked) by the engine as it is parsed.
#pragma once
#include <CLI/CLI.hpp>

#include "engine/attention_options.h"

namespace cascade::cli {

void add_attention_flags(CLI::App* c, engine::AttentionOptions& o);

}  // namespace cascade::cli
