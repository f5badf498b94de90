// The attention flags shared by generate, perplexity and logits (and study): exact attention by
// default; --attention ada with the selection and compressed-attention options of SPEC 1-3.
#pragma once
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "attention/ada_attention.h"

namespace cascade::cli {

struct AttentionFlags {
  std::string attention = "full";
  std::string select = "cascade";
  std::string rule = "greedy";
  std::string similarity = "pearson";
  std::string queries = "reps";
  double tau = 0.30;
  bool proportional = false;
};

void add_attention_flags(CLI::App* c, AttentionFlags& f);
// The ADA options the flags name (throws cascade::Error on bad values).
AdaOptions ada_options(const AttentionFlags& f);
// nullptr for exact attention.
std::unique_ptr<AttentionFactory> make_attention(const AttentionFlags& f);

}  // namespace cascade::cli
