// The tokenizer of a vocabulary carried inside a model file (GGUF; io/embedded_vocab.h).
#pragma once
#include <memory>

#include "io/embedded_vocab.h"
#include "tokenizer/tokenizer.h"

namespace cascade {

// model "gpt2": byte-level BPE from the merges; "llama": sentencepiece BPE from the scores. Control
// tokens are special, user-defined tokens added. cascade::Error naming v.source for another model,
// a pre-tokenizer other than GPT-2's (alone or after single digits), or missing merges or scores.
std::unique_ptr<Tokenizer> make_embedded_tokenizer(const EmbeddedVocab& v);

}  // namespace cascade
