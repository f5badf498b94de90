// llama2.c tokenizer.bin: int32 max_token_length, then per token float32 score, int32 length and
// the piece's bytes, up to the end of the file (the count is not stored). llama2.c's exporter wrote
// pieces with "▁" turned into ' ' and renamed <s> and </s> to "\n<s>\n" and "\n</s>\n"; both are
// undone here so that the vocabulary has sentencepiece's own pieces. Ids 0, 1, 2 are <unk>, <s>,
// </s>; pairs merge by score, as in llama2.c's encode().
#include <cstring>
#include <fstream>
#include <iterator>
#include <string_view>

#include "core/error.h"
#include "tokenizer/tokenizer_files.h"

namespace cascade {

std::unique_ptr<Tokenizer> load_llama2c_tokenizer(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) fail("cannot open ", file.string());
  const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  SentencePieceVocab v;
  size_t pos = 0;
  auto read = [&](void* dst, size_t n, const char* what) {
    if (data.size() - pos < n)
      fail(file.string(), ": truncated (", data.size(), " bytes) while reading ", what, " of token ",
           v.pieces.size());
    std::memcpy(dst, data.data() + pos, n);
    pos += n;
  };
  int32_t max_len = 0;
  read(&max_len, 4, "max_token_length before");
  if (max_len <= 0) fail(file.string(), ": max_token_length ", max_len, " is not positive");

  while (pos < data.size()) {
    float score = 0;
    int32_t len = 0;
    read(&score, 4, "a score");
    read(&len, 4, "a length");
    if (len < 0 || len > max_len)
      fail(file.string(), ": token ", v.pieces.size(), " has length ", len, " (max_token_length ", max_len, ")");
    // Checked before anything is allocated: a length up to max_token_length (2^31 - 1 in a hostile
    // file) must not become a 2 GB string for a file a few bytes long.
    if (data.size() - pos < size_t(len))
      fail(file.string(), ": truncated (", data.size(), " bytes) while reading a piece of token ", v.pieces.size());
    const std::string_view piece(data.data() + pos, size_t(len));
    pos += size_t(len);
    std::string restored;
    for (char c : piece) restored += c == ' ' ? std::string("\xE2\x96\x81") : std::string(1, c);
    v.pieces.push_back(std::move(restored));
    v.scores.push_back(score);
  }
  if (v.pieces.size() < 3) fail(file.string(), ": ", v.pieces.size(), " tokens; expected <unk>, <s>, </s> and more");
  v.pieces[0] = "<unk>";
  v.pieces[1] = "<s>";
  v.pieces[2] = "</s>";
  v.special_ids = {0, 1, 2};
  v.unk = 0;
  v.bos = 1;
  v.eos = 2;
  try {
    return make_sentencepiece_bpe(std::move(v));
  } catch (const Error& e) {
    fail(file.string(), ": ", e.what());
  }
}

}  // namespace cascade
