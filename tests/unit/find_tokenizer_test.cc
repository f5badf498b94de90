// One tokenizer search for every checkpoint format (tokenizer/find_tokenizer.h): its order, its
// error naming exactly what it looked for, and a Hugging Face checkpoint whose tokenizer has OpenAI's
// original GPT-2 file names (encoder.json + vocab.bpe) loading beside the model.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/model_tokenizer.h"
#include "support/test_paths.h"
#include "tokenizer/find_tokenizer.h"

namespace cascade {
namespace {

namespace fs = std::filesystem;

void write_file(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class FindTokenizer : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("cascade_find_tok_" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "_" +
            std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  // A Hugging Face checkpoint without a tokenizer: the GPT-2 fixture's config and weights (320 tokens).
  void copy_gpt2_checkpoint() {
    for (const char* f : {"config.json", "model.safetensors"}) fs::copy_file(test::data_dir() / "models/gpt2" / f, dir_ / f);
  }
  fs::path dir_;
};

TEST_F(FindTokenizer, TakesTheFirstOfOneOrderedList) {
  EXPECT_FALSE(find_tokenizer(dir_, 512));
  write_file(dir_ / "tok512.bin", "");
  EXPECT_EQ(find_tokenizer(dir_, 512)->file, dir_ / "tok512.bin");
  EXPECT_FALSE(find_tokenizer(dir_));  // tok<V>.bin needs the vocabulary size
  write_file(dir_ / "tokenizer.bin", "");
  EXPECT_EQ(find_tokenizer(dir_, 512)->file, dir_ / "tokenizer.bin");
  write_file(dir_ / "encoder.json", "");
  EXPECT_EQ(find_tokenizer(dir_, 512)->file, dir_ / "tokenizer.bin");  // a vocabulary needs its merges
  write_file(dir_ / "vocab.bpe", "");
  EXPECT_EQ(find_tokenizer(dir_, 512)->file, dir_ / "encoder.json");
  EXPECT_EQ(find_tokenizer(dir_, 512)->merges, dir_ / "vocab.bpe");
  write_file(dir_ / "vocab.json", "");
  write_file(dir_ / "merges.txt", "");
  EXPECT_EQ(find_tokenizer(dir_, 512)->file, dir_ / "vocab.json");
  write_file(dir_ / "tokenizer.json", "");
  EXPECT_EQ(find_tokenizer(dir_, 512)->file, dir_ / "tokenizer.json");
  EXPECT_TRUE(find_tokenizer(dir_, 512)->merges.empty());
}

TEST_F(FindTokenizer, ErrorNamesTheSearchItDid) {
  EXPECT_EQ(tokenizer_search(320), "tokenizer.json, vocab.json + merges.txt, encoder.json + vocab.bpe, tokenizer.bin, tok320.bin");
  copy_gpt2_checkpoint();
  const auto m = Model::load(dir_);
  try {
    model_tokenizer(*m, dir_, "");
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("looked in " + dir_.string() + " for " + tokenizer_search(320)), std::string::npos) << msg;
  }
  try {
    load_tokenizer(dir_);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("looked for " + tokenizer_search()), std::string::npos) << e.what();
  }
}

// GPT-2's own tokenizer cut to the fixture's 320 tokens: the 256 bytes and the first merges whose
// parts and result are among them.
TEST_F(FindTokenizer, Gpt2FileNamesLoadBesideAHuggingFaceCheckpoint) {
  CASCADE_REQUIRE_SHARED(encoder, "models/gpt2-tokenizer/encoder.json");
  CASCADE_REQUIRE_SHARED(merges, "models/gpt2-tokenizer/vocab.bpe");
  copy_gpt2_checkpoint();
  const nlohmann::json gpt2 = nlohmann::json::parse(read_file(encoder));
  nlohmann::json vocab = nlohmann::json::object();
  for (const auto& [token, id] : gpt2.items())
    if (id.get<int>() < 320) vocab[token] = id;
  std::istringstream lines(read_file(merges));
  std::string line, kept;
  while (std::getline(lines, line)) {
    const auto sp = line.find(' ');
    if (line.starts_with("#version") || sp == std::string::npos) {
      kept += line + "\n";
      continue;
    }
    const std::string a = line.substr(0, sp), b = line.substr(sp + 1);
    if (vocab.contains(a) && vocab.contains(b) && vocab.contains(a + b)) kept += line + "\n";
  }
  write_file(dir_ / "encoder.json", vocab.dump());
  write_file(dir_ / "vocab.bpe", kept);

  const auto m = Model::load(dir_);
  const auto tok = model_tokenizer(*m, dir_, "");
  EXPECT_EQ(tok->kind(), "byte-bpe");
  EXPECT_EQ(tok->vocab_size(), 320);
  const std::string text = "Once upon a time, there was a theory.";
  const auto ids = tok->encode(text, false);
  EXPECT_LT(ids.size(), text.size());  // some merges applied
  EXPECT_EQ(tok->decode(ids), text);
}

}  // namespace
}  // namespace cascade
