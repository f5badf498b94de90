// cuDNN's fused attention (its SDPA graph through cudnn-frontend) for the attention op's plain causal
// case: ops::gpu::attention hands it the arguments whose caller set causal_by_index, when they are in
// its reach. Why it is there (BENCHMARKS.md "GPU attention"): on the H200 at T >= 8192 it ran causal
// prefill at 564-643 TFLOP/s against Cascade's kernel's 198-315; Cascade's kernel keeps everything
// cuDNN's graph does not take (positions, windows with pinned keys, a bias, own keys, decoding).
//
// The library is loaded at run time (cudnn-frontend's dynamic loading): libcudnn.so.9 from the
// loader's path, or the file that CASCADE_CUDNN_LIBRARY names. A build or a machine without it runs
// Cascade's kernel everywhere. One execution plan per shape, built on the shape's first call and kept
// for the process with its workspace, so that a computation runs on the same kernel every time (a
// graph's replay equals the launches it was captured from, bit for bit). Callers whose shape changes
// from layer to layer (ADA's representatives, ada-kv's kept caches) do not state causal_by_index: a
// plan each would cost more than the attention. Never built inside a graph capture (a forward runs
// without a graph before it is captured, so its shapes have their plans by then).
// The twin in a build without it (CPU-only builds too) is attention_cudnn_none.cc.
#pragma once
#include <string>

#include "ops/attention.h"

struct CUstream_st;

namespace cascade::ops::gpu::cudnn_sdpa {

// Whether this build has the cuDNN path (CMake's CASCADE_WITH_CUDNN).
bool built();
// Whether cuDNN can run here: built, and its library loads (on the first call) and is recent enough.
// Otherwise *why (if given) says what is missing.
bool available(std::string* why = nullptr);
// Whether the arguments are in the fused graph's reach: causal_by_index, f16 or bf16, a head size
// that is a multiple of 8 up to 256, at least 16 queries and no more than keys, rows and pointers
// 16-byte aligned.
bool applies(const AttentionArgs& a);
// Runs the attention on stream s; false (with *why) when cuDNN is unavailable, has no plan for the
// shape (its heuristics, or a first call inside a graph capture), or fails, in which case the caller
// runs Cascade's kernel.
bool run(const AttentionArgs& a, CUstream_st* s, std::string* why);
// "cuDNN 9.x.y (cudnn-frontend 1.x.y)" when available, else why not.
std::string describe();

}  // namespace cascade::ops::gpu::cudnn_sdpa
