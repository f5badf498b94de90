// Maps a checkpoint's Hugging Face tensor names onto the decoder's weights, per family, checking
// every shape against the ArchSpec. The result holds the tensors as stored (typed views of the map);
// nothing is widened or converted here (see widen_weights and the GPU upload).
#pragma once
#include "arch/arch_spec.h"
#include "io/weights.h"
#include "arch/weights.h"

namespace cascade {

StoredWeights load_weights(const ArchSpec& spec, const WeightSource& src);

}  // namespace cascade
