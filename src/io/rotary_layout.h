// Rotary-embedding row layouts. Meta's Llama (and llama2.c, and GGUF) rotate interleaved pairs
// (2i, 2i+1) of each head; Hugging Face Llama rotates halves (i, i + head_dim/2). The decoder
// follows Hugging Face, so q/k projection rows from the other layout are reordered at load.
#pragma once
#include "core/tensor.h"

namespace cascade {

// w: a q or k projection (or bias) whose dim(0) is n_heads * head_dim, rows in Meta order.
// Returns an owned copy with rows in Hugging Face order: within each head h,
// new[h*hd + j] = old[h*hd + 2j] for j < hd/2 and old[h*hd + 2(j - hd/2) + 1] otherwise
// (exactly `permute` in HF's convert_llama_weights_to_hf.py, which converts Meta weights; GGUF
// llama files hold the Meta order too, since llama.cpp's converter undoes that permute).
// Throws cascade::Error when dim(0) is not n_heads times an even head_dim.
Tensor meta_to_hf_rotary_rows(const Tensor& w, int n_heads);

}  // namespace cascade
