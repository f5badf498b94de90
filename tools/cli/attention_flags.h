// The attention flags shared by generate, perplexity, logits and bench: exact attention by
// default; --attention ada with the selection and compressed-attention options of SPEC 1-3; and
// where the model runs: --device cpu|cuda, --dtype f32|fp16|bf16 (cpu: f32 only; cuda: bf16 unless
// told; ADA there as AdaAttentionFactory::check_gpu allows).
#pragma once
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "attention/ada_attention.h"
#include "model/model.h"

namespace cascade::cli {

struct AttentionFlags {
  std::string attention = "full";
  std::string select = "cascade";
  std::string rule = "greedy";
  std::string similarity = "pearson";
  std::string queries = "reps";
  double tau = 0.30;
  bool proportional = false;
  std::string device = "cpu";
  std::string dtype;  // empty: f32 on the CPU, bf16 on the GPU
  std::string cuda_graphs = "on";
};

void add_attention_flags(CLI::App* c, AttentionFlags& f);
// The ADA options the flags name (throws cascade::Error on bad values).
AdaOptions ada_options(const AttentionFlags& f);
// nullptr for exact attention. Also checks --device/--dtype before any model is read: a CPU-only
// build, no GPU, a 16-bit dtype on the CPU or ADA options the GPU lacks (AttentionFactory::check_gpu) is a cascade::Error.
std::unique_ptr<AttentionFactory> make_attention(const AttentionFlags& f);
// Moves a loaded model to the device and dtype the flags name (uploads the weights for cuda).
void place_model(Model& m, const AttentionFlags& f);

}  // namespace cascade::cli
