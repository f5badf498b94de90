// The GPT-2 pre-tokenizer: splits text into the words that byte-level BPE merges within, exactly as
// the regex  's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+  does in
// Hugging Face tokenizers. Written by hand (no regex engine): the alternatives are tried in order
// at each position, which is all the regex does since every character matches one of them.
// Some vocabularies (SmolLM2, StarCoder) split off every digit before that regex: split_digits.
#pragma once
#include <string_view>
#include <vector>

namespace cascade {

// The consecutive matches of the GPT-2 regex over text; their concatenation is text.
std::vector<std::string_view> gpt2_pretokenize(std::string_view text);

// Hugging Face's Digits(individual_digits=true) pre-tokenizer, which is llama.cpp's "\p{N}" split of
// its "smollm" pre-tokenizer: every \p{N} character is a piece of its own, each run between them
// one piece. Their concatenation is text.
std::vector<std::string_view> split_digits(std::string_view text);

}  // namespace cascade
