// Feed-forward activations, in place. For GLU activations `gate` holds act(gate) * up on return.
#pragma once
#include <cstdint>

namespace cascade {

enum class Activation { GeluTanh, GeluErf, Relu, SiluGlu, GeluTanhGlu };

namespace ops {

// Non-GLU: x[n] = act(x[n]). GLU (SiluGlu, GeluTanhGlu): gate[n] = act(gate[n]) * up[n].
void activation(Activation a, float* x, const float* up, int64_t n);
bool is_glu(Activation a);

}  // namespace ops
}  // namespace cascade
