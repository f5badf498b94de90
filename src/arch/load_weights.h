// Maps a checkpoint's Hugging Face tensor names onto the decoder's weights, per family, checking
// every shape against the ArchSpec.
#pragma once
#include "arch/arch_spec.h"
#include "io/weights.h"
#include "arch/weights.h"

namespace cascade {

ModelWeights load_weights(const ArchSpec& spec, const WeightSource& src);

}  // namespace cascade
