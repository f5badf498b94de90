// GGUF reader tests. Expected values come from llama.cpp's own gguf-py (scripts/make_gguf_fixtures.py
// writes them to tests/data/gguf/), so dequantization, shapes and the Q/K row order are checked
// against an independent implementation. Malformed files are built byte by byte here, each from a
// minimal valid file with one defect, so that every error test fails for the reason it names.
#include "io/gguf.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <initializer_list>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/gguf_dequant.h"
#include "io/npy.h"
#include "support/test_paths.h"
#include "tokenizer/embedded_tokenizer.h"

namespace cascade {
namespace {

namespace fs = std::filesystem;

fs::path gguf_data(const std::string& name) { return test::data_dir() / "gguf" / name; }

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

fs::path write_temp(const std::string& name, const std::string& bytes) {
  const fs::path p = fs::path(testing::TempDir()) / ("cascade_gguf_test_" + name + ".gguf");
  std::ofstream(p, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
  return p;
}

// Runs f, which must throw cascade::Error whose message contains every part.
template <typename F>
void expect_error(F f, std::initializer_list<std::string> parts) {
  try {
    f();
    ADD_FAILURE() << "no cascade::Error thrown";
  } catch (const Error& e) {
    for (const auto& p : parts)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << "message: " << e.what() << "\nwanted: " << p;
  }
}

// ---- dequantization -------------------------------------------------------------------------

struct TypeCase {
  const char* name;
  GgmlType type;
};

void PrintTo(const TypeCase& c, std::ostream* os) { *os << c.name; }

class Dequant : public testing::TestWithParam<TypeCase> {};

TEST_P(Dequant, MatchesGgufPy) {
  const TypeCase c = GetParam();
  const NpyArray blocks = read_npy(gguf_data(std::string("dequant/") + c.name + "_blocks.npy"));
  const NpyArray values = read_npy(gguf_data(std::string("dequant/") + c.name + "_values.npy"));
  ASSERT_EQ(blocks.descr, "|u1");
  const GgmlBlock blk = ggml_block(c.type);
  ASSERT_EQ(int64_t(blocks.bytes.size()) % blk.bytes, 0);
  const int64_t n = int64_t(blocks.bytes.size()) / blk.bytes * blk.elements;
  const std::vector<float> want = values.to_float32(c.name);
  ASSERT_EQ(int64_t(want.size()), n);
  std::vector<float> got(size_t(n), std::nanf(""));
  dequantize(c.type, blocks.bytes.data(), got.data(), n);
  int bad = 0;
  for (int64_t i = 0; i < n && bad < 10; ++i) {
    EXPECT_FLOAT_EQ(got[size_t(i)], want[size_t(i)])
        << c.name << " element " << i << " (block " << i / blk.elements << ")";
    bad += got[size_t(i)] != want[size_t(i)];
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, Dequant,
                         testing::Values(TypeCase{"F32", GgmlType::F32}, TypeCase{"F16", GgmlType::F16},
                                         TypeCase{"BF16", GgmlType::BF16}, TypeCase{"Q8_0", GgmlType::Q8_0},
                                         TypeCase{"Q4_0", GgmlType::Q4_0}, TypeCase{"Q4_1", GgmlType::Q4_1},
                                         TypeCase{"Q5_0", GgmlType::Q5_0}, TypeCase{"Q5_1", GgmlType::Q5_1},
                                         TypeCase{"Q4_K", GgmlType::Q4_K}, TypeCase{"Q5_K", GgmlType::Q5_K},
                                         TypeCase{"Q6_K", GgmlType::Q6_K}),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(GgmlTypes, NamesEveryKnownType) {
  EXPECT_EQ(ggml_type_name(10), "Q2_K");
  EXPECT_EQ(ggml_type_name(30), "BF16");
  EXPECT_EQ(ggml_type_name(23), "IQ4_XS");
  EXPECT_EQ(ggml_type_name(1000), "unknown type 1000");
  EXPECT_TRUE(ggml_type_supported(14));
  EXPECT_FALSE(ggml_type_supported(10));
  EXPECT_FALSE(ggml_type_supported(4));
}

// ---- the tiny llama files -------------------------------------------------------------------

TEST(GgufTinyLlama, ConfigFromMetadata) {
  const Checkpoint ck = open_gguf_checkpoint(gguf_data("tiny_llama_bpe.gguf"));
  EXPECT_EQ(ck.format, "gguf");
  const auto& c = ck.config;
  EXPECT_EQ(c["model_type"], "llama");
  EXPECT_EQ(c["hidden_size"], 32);
  EXPECT_EQ(c["intermediate_size"], 256);
  EXPECT_EQ(c["num_hidden_layers"], 2);
  EXPECT_EQ(c["num_attention_heads"], 2);
  EXPECT_EQ(c["num_key_value_heads"], 1);
  EXPECT_EQ(c["head_dim"], 16);
  EXPECT_EQ(c["vocab_size"], 261);
  EXPECT_EQ(c["max_position_embeddings"], 128);
  EXPECT_NEAR(c["rms_norm_eps"].get<double>(), 1e-6, 1e-12);
  EXPECT_DOUBLE_EQ(c["rope_theta"].get<double>(), 500000.0);
  EXPECT_EQ(c["tie_word_embeddings"], false);
  EXPECT_EQ(c["bos_token_id"], 260);
  EXPECT_EQ(c["eos_token_id"], 260);
}

TEST(GgufTinyLlama, OpenCheckpointDispatchesOnExtension) {
  const Checkpoint ck = open_checkpoint(gguf_data("tiny_llama_spm.gguf"));
  EXPECT_EQ(ck.format, "gguf");
  EXPECT_TRUE(ck.embedded_vocab);
}

TEST(GgufTinyLlama, FormatMetadataForInspect) {
  const Checkpoint ck = open_gguf_checkpoint(gguf_data("tiny_llama_bpe.gguf"));
  const auto& m = ck.format_metadata;
  EXPECT_EQ(m["version"], 3);
  EXPECT_EQ(m["alignment"], 32);
  EXPECT_EQ(m["tensor_count"], 21);
  const std::map<std::string, int> types = m["tensor_types"];
  const std::map<std::string, int> want = {{"F32", 6},  {"Q8_0", 3}, {"Q4_0", 2}, {"Q4_1", 2}, {"Q5_0", 2},
                                           {"Q5_1", 2}, {"F16", 1},  {"BF16", 1}, {"Q4_K", 1}, {"Q6_K", 1}};
  EXPECT_EQ(types, want);
  EXPECT_EQ(m["metadata"]["general.architecture"], "llama");
  EXPECT_EQ(m["metadata"]["general.name"], "tiny test llama");
  EXPECT_EQ(m["metadata"]["llama.block_count"], 2);
  EXPECT_EQ(m["metadata"]["tokenizer.ggml.tokens"], "[261 x STRING]");  // summarised, not listed
  EXPECT_EQ(m["metadata"]["tokenizer.ggml.merges"], nlohmann::json({"h e", "l l", "he ll", "hell o"}));
}

TEST(GgufTinyLlama, TensorsMatchGgufPyUnderHuggingFaceNames) {
  const Checkpoint ck = open_gguf_checkpoint(gguf_data("tiny_llama_bpe.gguf"));
  const nlohmann::json index = nlohmann::json::parse(read_bytes(gguf_data("tiny_llama_bpe_expected.json")));
  const std::vector<int32_t> idx = read_npy(gguf_data("tiny_llama_bpe_sample_idx.npy")).to_int32("idx");
  const std::vector<float> val = read_npy(gguf_data("tiny_llama_bpe_sample_val.npy")).to_float32("val");
  std::map<std::string, TensorMeta> listed;
  for (const TensorMeta& t : ck.weights->list()) listed[t.name] = t;
  ASSERT_EQ(listed.size(), index.size());
  for (const auto& e : index) {
    const std::string name = e["name"];
    SCOPED_TRACE(name);
    const std::vector<int64_t> shape = e["shape"];
    ASSERT_TRUE(ck.weights->has(name));
    EXPECT_EQ(listed[name].shape, shape);
    const Tensor t = ck.weights->load_f32(name);
    ASSERT_EQ(t.shape(), shape);
    double sum = 0;
    for (int64_t i = 0; i < t.numel(); ++i) sum += t.data()[i];
    EXPECT_NEAR(sum, e["sum"].get<double>(), 1e-3 * (1 + std::abs(e["sum"].get<double>())));
    const size_t first = e["first"], count = e["count"];
    for (size_t k = first; k < first + count; ++k) EXPECT_FLOAT_EQ(t.data()[idx[k]], val[k]) << "flat index " << idx[k];
  }
  EXPECT_EQ(listed["model.layers.0.self_attn.q_proj.weight"].dtype, "Q4_0");
  EXPECT_EQ(listed["model.layers.1.mlp.down_proj.weight"].dtype, "Q6_K");
  EXPECT_FALSE(ck.weights->has("blk.0.attn_q.weight"));
  expect_error([&] { ck.weights->load_f32("model.layers.2.mlp.up_proj.weight"); },
               {"tiny_llama_bpe.gguf", "model.layers.2.mlp.up_proj.weight"});
}

TEST(GgufTinyLlama, ByteBpeTokenizerFromMetadata) {
  const Checkpoint ck = open_gguf_checkpoint(gguf_data("tiny_llama_bpe.gguf"));
  ASSERT_TRUE(ck.embedded_vocab);
  const auto built = make_embedded_tokenizer(*ck.embedded_vocab);
  const Tokenizer& tok = *built;
  EXPECT_EQ(tok.kind(), "byte-bpe");
  EXPECT_EQ(tok.vocab_size(), 261);
  EXPECT_EQ(tok.bos_id(), 260);
  EXPECT_EQ(tok.eos_id(), 260);
  // Byte b is token b; "hello" is 259 after four merges; the control token is matched literally.
  EXPECT_EQ(tok.encode("hello hello", true), (std::vector<int32_t>{259, 32, 259}));  // add_bos_token false
  EXPECT_EQ(tok.encode("x<|endoftext|>", false), (std::vector<int32_t>{'x', 260}));
  const std::vector<int32_t> ids = {259, 32, 259, 260};
  EXPECT_EQ(tok.decode(ids), "hello hello");
}

TEST(GgufTinyLlama, SentencePieceTokenizerAndTiedEmbeddings) {
  const Checkpoint ck = open_gguf_checkpoint(gguf_data("tiny_llama_spm.gguf"));
  EXPECT_EQ(ck.config["tie_word_embeddings"], true);
  EXPECT_FALSE(ck.weights->has("lm_head.weight"));
  EXPECT_EQ(ck.config["num_key_value_heads"], 2);  // absent head_count_kv: as many as query heads
  EXPECT_EQ(ck.config["head_dim"], 8);
  EXPECT_DOUBLE_EQ(ck.config["rope_theta"].get<double>(), 10000.0);
  ASSERT_TRUE(ck.embedded_vocab);
  const auto built = make_embedded_tokenizer(*ck.embedded_vocab);
  const Tokenizer& tok = *built;
  EXPECT_EQ(tok.kind(), "sentencepiece-bpe");
  EXPECT_EQ(tok.vocab_size(), 3 + 256 + 10);
  EXPECT_EQ(tok.bos_id(), 1);
  EXPECT_EQ(tok.eos_id(), 2);
  // Pieces after the 259 specials and bytes: ▁ h e l o ▁h ll ▁he llo ▁hello (scores descending).
  EXPECT_EQ(tok.encode("hello", true), (std::vector<int32_t>{1, 268}));
  EXPECT_EQ(tok.encode("x", false), (std::vector<int32_t>{259, 3 + 'x'}));  // byte fallback
  const Tensor norm = ck.weights->load_f32("model.norm.weight");
  EXPECT_EQ(norm.shape(), (std::vector<int64_t>{16}));
  EXPECT_FLOAT_EQ(norm.data()[15], 1.0f);
}

// ---- malformed files ------------------------------------------------------------------------

// A minimal GGUF file: one metadata key and one 32-element tensor, with knobs for one defect each.
struct Spec {
  std::string magic = "GGUF";
  uint32_t version = 3;
  uint64_t key_length = 0;  // when non-zero, written instead of the real length of the first key
  bool alignment_as_string = false;
  bool nested_array = false;
  std::string architecture = "llama";
  uint32_t tensor_type = 0;  // F32
  uint64_t tensor_offset = 0;
  size_t data_bytes = 128;
};

void put32(std::string& b, uint32_t v) { b.append(reinterpret_cast<const char*>(&v), 4); }
void put64(std::string& b, uint64_t v) { b.append(reinterpret_cast<const char*>(&v), 8); }
void put_str(std::string& b, const std::string& s, uint64_t len = 0) {
  put64(b, len ? len : s.size());
  b += s;
}

std::string minimal_gguf(const Spec& s) {
  std::string b = s.magic;
  put32(b, s.version);
  put64(b, 1);                                              // tensors
  put64(b, 1 + (s.alignment_as_string || s.nested_array));  // metadata keys
  put_str(b, "general.architecture", s.key_length);
  put32(b, uint32_t(GgufType::STRING));
  put_str(b, s.architecture);
  if (s.alignment_as_string) {
    put_str(b, "general.alignment");
    put32(b, uint32_t(GgufType::STRING));
    put_str(b, "32");
  }
  if (s.nested_array) {
    put_str(b, "general.tags");
    put32(b, uint32_t(GgufType::ARRAY));
    put32(b, uint32_t(GgufType::ARRAY));
    put64(b, 0);
  }
  put_str(b, "output_norm.weight");
  put32(b, 1);   // dimensions
  put64(b, 32);  // ne[0]
  put32(b, s.tensor_type);
  put64(b, s.tensor_offset);
  b.append((32 - b.size() % 32) % 32, '\0');
  b.append(s.data_bytes, '\0');
  return b;
}

fs::path bad_file(const std::string& name, const Spec& s) { return write_temp(name, minimal_gguf(s)); }

TEST(GgufBadInput, MinimalFileIsValid) {
  // The baseline of every defect below: without the defect it opens.
  const auto f = GgufFile::open(bad_file("valid", Spec{}));
  ASSERT_EQ(f->tensors().size(), 1u);
  EXPECT_EQ(f->tensors()[0].nbytes, 128u);
  EXPECT_EQ(f->get_string("general.architecture"), "llama");
}

TEST(GgufBadInput, Truncated) {
  const std::string whole = read_bytes(gguf_data("tiny_llama_bpe.gguf"));
  ASSERT_GT(whole.size(), 4000u);
  const auto open = [](const fs::path& p) { return [p] { GgufFile::open(p); }; };
  expect_error(open(write_temp("trunc_header", whole.substr(0, 12))), {"truncated", "tensor count"});
  expect_error(open(write_temp("trunc_metadata", whole.substr(0, 3000))), {"trunc_metadata.gguf", "truncated"});
  expect_error(open(write_temp("trunc_data", whole.substr(0, whole.size() - 100))), {"beyond the end of the file"});
}

TEST(GgufBadInput, WrongMagic) {
  Spec s;
  s.magic = "GGML";
  expect_error([&] { GgufFile::open(bad_file("magic", s)); }, {"magic.gguf", "not a GGUF file", "'GGML'"});
}

TEST(GgufBadInput, UnknownVersion) {
  Spec s;
  s.version = 4;
  expect_error([&] { GgufFile::open(bad_file("version4", s)); }, {"unknown GGUF version 4"});
  s.version = 1;
  expect_error([&] { GgufFile::open(bad_file("version1", s)); }, {"version 1"});
  s.version = 0x03000000;
  expect_error([&] { GgufFile::open(bad_file("big_endian", s)); }, {"big-endian"});
}

TEST(GgufBadInput, UnsupportedTensorType) {
  Spec s;
  s.tensor_type = 10;
  expect_error([&] { GgufFile::open(bad_file("q2k", s)); }, {"output_norm.weight", "Q2_K", "supported: F32"});
  s.tensor_type = 99;
  expect_error([&] { GgufFile::open(bad_file("type99", s)); }, {"unknown type 99"});
}

TEST(GgufBadInput, MisalignedOffset) {
  Spec s;
  s.tensor_offset = 4;
  expect_error([&] { GgufFile::open(bad_file("misaligned", s)); }, {"output_norm.weight", "offset 4", "alignment 32"});
}

TEST(GgufBadInput, TensorDataBeyondFile) {
  Spec s;
  s.data_bytes = 100;
  expect_error([&] { GgufFile::open(bad_file("short_data", s)); },
               {"output_norm.weight", "beyond the end of the file"});
}

TEST(GgufBadInput, MetadataOfWrongType) {
  Spec s;
  s.alignment_as_string = true;
  expect_error([&] { GgufFile::open(bad_file("align_string", s)); },
               {"general.alignment", "STRING", "expected an integer"});
  // A key that only the llama loader reads: the tiny file's block count, rewritten as a float.
  std::string b = read_bytes(gguf_data("tiny_llama_bpe.gguf"));
  const std::string key = "llama.block_count";
  const size_t at = b.find(key);
  ASSERT_NE(at, std::string::npos);
  const uint32_t f32 = uint32_t(GgufType::F32);
  b.replace(at + key.size(), 4, reinterpret_cast<const char*>(&f32), 4);  // UINT32 -> FLOAT32, same width
  expect_error([&] { open_gguf_checkpoint(write_temp("block_count_float", b)); },
               {"llama.block_count", "FLOAT32", "expected an integer"});
}

TEST(GgufBadInput, AbsurdStringLength) {
  Spec s;
  s.key_length = uint64_t(1) << 60;
  expect_error([&] { GgufFile::open(bad_file("huge_string", s)); }, {"string length 1152921504606846976", "exceeds"});
}

TEST(GgufBadInput, NestedArrayRefused) {
  Spec s;
  s.nested_array = true;
  expect_error([&] { GgufFile::open(bad_file("nested", s)); }, {"general.tags", "array of arrays"});
}

TEST(GgufBadInput, UnsupportedArchitecture) {
  Spec s;
  s.architecture = "qwen2";
  expect_error([&] { open_gguf_checkpoint(bad_file("qwen2", s)); }, {"unsupported GGUF architecture 'qwen2'"});
}

// ---- byte-level tokenizer metadata: tokenizer.ggml.pre and bytes without a token ---------------

// A llama GGUF whose one tensor is a 4-wide token_embd.weight, with a gpt2 tokenizer of GPT-2's 256
// byte tokens (token b is byte b, except that bytes 0x04 and 0xC3 have none: their slots hold
// "<unused4>" and "<unused195>") plus "Ġ1" (256) and "12" (257) from two merges, and an
// unknown_token_id, which llama.cpp ignores for gpt2 vocabularies. pre: tokenizer.ggml.pre, or
// none when empty.
std::string byte_bpe_gguf(const std::string& pre) {
  std::vector<std::string> tokens;
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    const int cp = printable ? b : next++;
    tokens.push_back(cp < 0x80 ? std::string(1, char(cp)) : std::string{char(0xC0 | (cp >> 6)), char(0x80 | (cp & 0x3F))});
  }
  tokens[0x04] = "<unused4>";
  tokens[0xC3] = "<unused195>";
  tokens.push_back("\u01201");
  tokens.push_back("12");
  const std::vector<std::string> merges = {"\u0120 1", "1 2"};
  const int64_t width = 4, vocab = int64_t(tokens.size());

  std::string kv;
  uint64_t n_kv = 0;
  auto key = [&](const std::string& k, GgufType t) {
    put_str(kv, k);
    put32(kv, uint32_t(t));
    ++n_kv;
  };
  auto u32 = [&](const std::string& k, uint32_t v) {
    key(k, GgufType::U32);
    put32(kv, v);
  };
  auto str = [&](const std::string& k, const std::string& v) {
    key(k, GgufType::STRING);
    put_str(kv, v);
  };
  auto strings = [&](const std::string& k, const std::vector<std::string>& v) {
    key(k, GgufType::ARRAY);
    put32(kv, uint32_t(GgufType::STRING));
    put64(kv, v.size());
    for (const auto& x : v) put_str(kv, x);
  };
  str("general.architecture", "llama");
  for (const char* k : {"llama.embedding_length", "llama.feed_forward_length", "llama.context_length"}) u32(k, 4);
  u32("llama.attention.head_count", 1);
  u32("llama.block_count", 1);
  key("llama.attention.layer_norm_rms_epsilon", GgufType::F32);
  const float eps = 1e-5f;
  kv.append(reinterpret_cast<const char*>(&eps), 4);
  str("tokenizer.ggml.model", "gpt2");
  if (!pre.empty()) str("tokenizer.ggml.pre", pre);
  strings("tokenizer.ggml.tokens", tokens);
  strings("tokenizer.ggml.merges", merges);
  u32("tokenizer.ggml.unknown_token_id", 0);

  std::string b = "GGUF";
  put32(b, 3);
  put64(b, 1);  // tensors
  put64(b, n_kv);
  b += kv;
  put_str(b, "token_embd.weight");
  put32(b, 2);
  put64(b, uint64_t(width));
  put64(b, uint64_t(vocab));
  put32(b, 0);  // F32
  put64(b, 0);
  b.append((32 - b.size() % 32) % 32, '\0');
  b.append(size_t(width * vocab) * sizeof(float), '\0');
  return b;
}

using Ids = std::vector<int32_t>;

TEST(GgufByteBpe, PreSmollmSplitsOffSingleDigits) {
  const auto tok = [](const std::string& pre) {
    return make_embedded_tokenizer(*open_gguf_checkpoint(write_temp("pre_" + pre, byte_bpe_gguf(pre))).embedded_vocab);
  };
  EXPECT_EQ(tok("")->encode(" 12 x12", false), (Ids{256, '2', ' ', 'x', 257}));  // no key: GPT-2's regex
  EXPECT_EQ(tok("gpt-2")->encode(" 12 x12", false), (Ids{256, '2', ' ', 'x', 257}));
  for (const char* pre : {"smollm", "starcoder"})
    EXPECT_EQ(tok(pre)->encode(" 12 x12", false), (Ids{' ', '1', '2', ' ', 'x', '1', '2'})) << pre;
}

TEST(GgufByteBpe, ByteWithoutATokenIsDroppedDespiteAnUnknownTokenId) {
  const auto ck = open_gguf_checkpoint(write_temp("missing_bytes", byte_bpe_gguf("smollm")));
  EXPECT_EQ(make_embedded_tokenizer(*ck.embedded_vocab)->encode("a\x04" "b\u00e9", false), (Ids{'a', 'b', 0xA9}));  // é is C3 A9
}

TEST(GgufByteBpe, UnknownPreIsAnErrorListingTheSupportedOnes) {
  expect_error([] { make_embedded_tokenizer(*open_gguf_checkpoint(write_temp("pre_llama3", byte_bpe_gguf("llama-bpe"))).embedded_vocab); },
               {"tokenizer.ggml.pre", "'llama-bpe'", "'default'", "'gpt-2'", "'smollm'"});
}

}  // namespace
}  // namespace cascade
