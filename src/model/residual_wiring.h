// The residual wiring of one decoder layer, written once and run by both decoders: the CPU's
// (Model::forward, float32 host buffers) and the GPU's (model/model_cuda.cu, device buffers in the
// compute dtype). Each family's difference is an ArchSpec field (norm position, residual kind); the
// backend B supplies the steps on its own buffers (B::Ptr, each [n, d_model]):
//   b.norm(l, which, src, dst)         dst = norm_which(src) of layer l (which: 1 or 2); dst may be src
//   b.add_norm(l, which, h, add, dst)  h += add; dst = norm_which(h)   (a fused kernel on the GPU)
//   b.attention(l, x, out)             out = the attention sub-layer of layer l on features x
//   b.mlp(l, x, out)                   out = the feed-forward block of layer l on x
//   b.add(h, a)                        h += a
//   b.add2(h, a, b2)                   h += a + b2 (the parallel residual; a may be overwritten)
#pragma once
#include <cstdint>

#include "arch/arch_spec.h"

namespace cascade {

// h: the residual stream (updated in place); x, att, ff: scratch of the same shape.
template <class B>
void residual_layer(const ArchSpec& a, B& b, int64_t l, typename B::Ptr h, typename B::Ptr x, typename B::Ptr att,
                    typename B::Ptr ff) {
  // X_l, the attention input: the pre-attention norm's output, or H_l itself for a post-norm model.
  typename B::Ptr in = h;
  if (a.pre_norm) {
    b.norm(l, 1, h, x);
    in = x;
  }
  b.attention(l, in, att);
  switch (a.residual) {
    case Residual::Sequential:
      if (a.pre_norm) {
        b.add_norm(l, 2, h, att, x);  // h += attn; x = norm2(h)
        b.mlp(l, x, ff);
        b.add(h, ff);
      } else {  // OPT post-LN: h = norm1(h + attn); h = norm2(h + mlp(h))
        b.add_norm(l, 1, h, att, h);
        b.mlp(l, h, ff);
        b.add_norm(l, 2, h, ff, h);
      }
      break;
    case Residual::ParallelShared:  // GPT-J: h += attn(n1(h)) + mlp(n1(h))
      b.mlp(l, in, ff);
      b.add2(h, att, ff);
      break;
    case Residual::ParallelTwoNorms:  // GPT-NeoX: h += attn(n1(h)) + mlp(n2(h))
      b.norm(l, 2, h, x);
      b.mlp(l, x, ff);
      b.add2(h, att, ff);
      break;
  }
}

}  // namespace cascade
