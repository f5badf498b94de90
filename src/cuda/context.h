// The per-process GPU context: one stream, one cuBLAS handle and one cuBLASLt handle with its
// workspace, created on first use on the current device. Everything the engine launches goes on
// context().stream, so a forward pass is one ordered stream (and can be captured as a CUDA graph).
#pragma once
#include "cuda/buffer.h"

namespace cascade::cuda {

struct Context {
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  cublasLtHandle_t blas_lt = nullptr;
  Buffer<unsigned char> lt_workspace;  // cuBLASLt's scratch (32 MiB, as cuBLAS uses on Hopper)
  // The general attention kernel's partial sums when it splits over keys (ops/attention_cuda.cu):
  // fewer than 18 * sm_count (query, head, split) units of head_dim + 2 <= 258 floats; fixed at
  // creation, so a captured graph never sees it move.
  Buffer<float> attention_partials;
  int sm_count = 0;
  Context();
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
};

// Throws cascade::Error when there is no usable GPU.
Context& context();

}  // namespace cascade::cuda
