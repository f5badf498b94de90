// Inputs the fuzz targets (fuzz/) and their review found to crash, each reduced to the smallest
// file that did and replayed through the reader that crashed: every one must now be a
// cascade::Error (the CLI's one message and exit code 2), never another exception, a sanitizer
// report or undefined behaviour. The README's Hardening section lists where each was fixed.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "arch/arch_spec.h"
#include "core/error.h"
#include "core/utf8.h"
#include "io/gguf.h"
#include "io/json_file.h"
#include "io/npy.h"
#include "io/llama2c.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "model/sampler.h"
#include "support/test_paths.h"
#include "tokenizer/tokenizer_files.h"

namespace cascade {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path write_temp(const std::string& name, const std::string& bytes) {
  const fs::path p = fs::temp_directory_path() / ("cascade_fuzz_regression_" + name);
  std::ofstream(p, std::ios::binary) << bytes;
  return p;
}

NpyArray npy(const std::string& header, const std::string& payload = std::string(64, '\0')) {
  const std::string bytes = std::string("\x93NUMPY\x01\x00", 8) + char(header.size() & 0xFF) + char(header.size() >> 8) + header + payload;
  return parse_npy(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "ids.npy");
}

// npy_fuzz: the item size was std::stoi of the dtype's tail, so '<?i4' threw std::invalid_argument
// and a shape dimension of 30 digits std::out_of_range (src/io/npy.cc, now parsed by hand).
TEST(FuzzRegression, NpyDtypeAndShapeThatAreNotNumbers) {
  EXPECT_THROW(npy("{'descr': '<?i4', 'fortran_order': False, 'shape': (12,), }"), Error);
  EXPECT_THROW(npy("{'descr': '<i99999999999', 'fortran_order': False, 'shape': (1,), }"), Error);
  EXPECT_THROW(npy("{'descr': '<i4', 'fortran_order': False, 'shape': (999999999999999999999999999999,), }"), Error);
  EXPECT_THROW(npy("{'descr': '<i4', 'fortran_order': False, 'shape': (2 3), }"), Error);
  EXPECT_THROW(npy("{'descr': <i4, 'fortran_order': False, 'shape': (2,), }"), Error);
  const NpyArray ok = npy("{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }");
  EXPECT_EQ(ok.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(npy("{'descr':'<f8','fortran_order':False,'shape':(4,)}").shape, std::vector<int64_t>{4});
}

// npy_fuzz: the std::regex header parse took quadratic time (and deep recursion) on long fuzzed
// headers. The header is now scanned by hand and, as numpy does, limited to 10000 bytes; a shape
// of more than 2^40 elements is refused from the header, before anything is allocated.
TEST(FuzzRegression, NpyLongHeaderAndHugeShape) {
  const std::string dict = "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }";
  std::string padded = dict + std::string(9000, ' ') + "\n";  // long, but under numpy's limit
  EXPECT_EQ(npy(padded).shape, std::vector<int64_t>{2});
  std::string junk(9990, '(');  // what made the regex slow: many partial matches
  EXPECT_THROW(npy(junk), Error);
  EXPECT_THROW(npy(dict + std::string(10001 - dict.size(), ' ')), Error);  // 10001 bytes
  // Version 2.0: a 4-byte header length far beyond the file.
  const std::string v2 = std::string("\x93NUMPY\x02\x00\xff\xff\xff\x7f", 12) + dict;
  EXPECT_THROW(parse_npy(reinterpret_cast<const uint8_t*>(v2.data()), v2.size(), "v2.npy"), Error);
  EXPECT_THROW(npy("{'descr': '<i4', 'fortran_order': False, 'shape': (1048576, 1048577), }"), Error);
  EXPECT_THROW(npy("{'descr': '<i4', 'fortran_order': False, 'shape': (1099511627776,), }"), Error);  // 2^40: no data
  EXPECT_THROW(npy("{'descr': '<i4', 'fortran_order': True, 'shape': (2,), }"), Error);
  EXPECT_THROW(npy("{'descr': '>i4', 'fortran_order': False, 'shape': (2,), }"), Error);
}

// npy_fuzz: an empty float array, shape (0, 64), passed a null pointer to memcpy (UBSan) in
// NpyArray::to_float32 (src/io/npy.cc).
TEST(FuzzRegression, NpyEmptyFloatArray) {
  const NpyArray a = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 64), }", "");
  EXPECT_TRUE(a.to_float32("empty").empty());
  EXPECT_TRUE(npy("{'descr': '<i8', 'fortran_order': False, 'shape': (0,), }", "").to_int32("empty").empty());
}

// config_fuzz: a number too large for a double ("1e3084") is a json out_of_range, not a
// parse_error, and escaped read_json_file and the safetensors header parse (src/io/json_file.cc,
// src/io/safetensors.cc).
TEST(FuzzRegression, JsonNumberOverflow) {
  EXPECT_THROW(read_json_file(write_temp("config.json", "{\"num_key_value_heads\": 1e3084}")), Error);
  const std::string header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1e400],\"data_offsets\":[0,4]}}";
  std::string file(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(file.data(), &n, 8);
  EXPECT_THROW(SafetensorsFile(write_temp("h.safetensors", file + header + "abcd")), Error);
}

// config_fuzz review: typed reads that threw json::type_error (rope_parameters and rope_scaling
// values of the wrong type) or overflowed (4 * n_embd, a rotary fraction of 1e300 cast to int64),
// and sizes that were never checked (negative key/value heads or head_dim) (src/arch/arch_table.cc).
TEST(FuzzRegression, ConfigValuesOfTheWrongTypeOrRange) {
  const json llama = read_json_file(test::data_dir() / "models/llama/config.json");
  const json gpt2 = read_json_file(test::data_dir() / "models/gpt2/config.json");
  const std::vector<std::pair<json, json>> cases = {
      {llama, {{"rope_parameters", {{"rope_type", "default"}, {"rope_theta", "x"}}}}},
      {llama, {{"rope_parameters", {{"rope_type", 5}}}}},
      {llama, {{"rope_parameters", {{"rope_type", "linear"}, {"factor", "two"}, {"rope_theta", 1e4}}}}},
      {llama, {{"rope_parameters", nullptr}, {"rope_scaling", {{"type", "linear"}, {"factor", json::array()}}}}},
      {llama, {{"rope_parameters", {{"rope_theta", 1e4}, {"partial_rotary_factor", 1e300}}}}},
      {llama, {{"rope_parameters", {{"rope_theta", -1.0}}}}},
      {llama, {{"num_key_value_heads", -4}}},
      {llama, {{"head_dim", -16}}},
      {gpt2, {{"n_embd", int64_t(1) << 62}, {"n_inner", nullptr}}},
  };
  for (const auto& [base, patch] : cases) {
    json c = base;
    c.update(patch);
    EXPECT_THROW(arch_from_config(c, "config.json"), Error) << patch.dump();
  }
}

// llama2c_fuzz, gguf_fuzz: weights so large (-3.7e19) that every attention logit overflowed to
// -inf were taken for "a query sees no key", and the std::logic_error thrown out of an OpenMP
// region was std::terminate (src/ops/attention.cc: visibility now comes from positions and the
// mask only; overflowed or NaN logits give NaN, as in PyTorch). Sampling from NaN logits, undefined
// behaviour in std::sort, is now an Error (src/model/sampler.cc).
TEST(FuzzRegression, HugeOrInfiniteWeightsGiveNanNotACrash) {
  // A llama2.c checkpoint: dim 8, hidden 16, 1 layer, 2 heads, 1 KV head, vocab 12, seq 4.
  const int32_t header[7] = {8, 16, 1, 2, 1, 12, 4};
  const size_t floats = 12 * 8 + (2 * 8 + 2 * 64 + 2 * 4 * 8 + 3 * 16 * 8) + 8 + 4 * 4;
  for (const float v : {-3.689376e19f, std::numeric_limits<float>::infinity()}) {
    const std::vector<float> w(floats, v);
    const fs::path file = write_temp("huge.bin", std::string(reinterpret_cast<const char*>(header), sizeof header) +
                                                     std::string(reinterpret_cast<const char*>(w.data()), w.size() * 4));
    const Model m(open_llama2c(file), file.string());
    Sequence s = m.new_sequence();
    const std::vector<int32_t> ids = {1, 2};
    const Tensor logits = m.forward(s, ids);  // threw std::logic_error inside OpenMP: terminate
    EXPECT_TRUE(std::isnan(logits.data()[0])) << v;
    Sampler sampler({0.8, 0, 1.0, 0});
    EXPECT_THROW(sampler.next(logits.row(1), logits.dim(1)), Error) << v;
  }
}

// llama2c_tokenizer_fuzz: a piece length up to max_token_length was allocated before the bytes
// were checked to be there, so a 16-byte file asked for 1 GiB (malloc limit exceeded under the
// fuzzer) (src/tokenizer/llama2c_tokenizer.cc).
TEST(FuzzRegression, Llama2cTokenizerPieceLongerThanTheFile) {
  const int32_t max_len = 0x7fffffff, len = 0x40000000;
  const float score = 0;
  std::string bytes(reinterpret_cast<const char*>(&max_len), 4);
  bytes += std::string(reinterpret_cast<const char*>(&score), 4) + std::string(reinterpret_cast<const char*>(&len), 4) + "abcd";
  EXPECT_THROW(load_llama2c_tokenizer(write_temp("tokenizer.bin", bytes)), Error);
}

// Bad-input matrix (tests/unit/cli_test.cc): `cascade inspect` died with "terminate called" on a
// GGUF string or a tokenizer error message holding bytes that are not UTF-8, because nlohmann's
// dump() throws json::type_error on them. Messages (fail) and GGUF metadata now show such bytes as
// \xNN, and a GGUF tensor name must be UTF-8 (src/core/utf8.cc, src/io/gguf.cc).
TEST(FuzzRegression, MessagesAndGgufMetadataAreValidUtf8) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"abc", "abc"},
      {"caf\xc3\xa9 \xf0\x9f\x98\x80", "caf\xc3\xa9 \xf0\x9f\x98\x80"},  // 2- and 4-byte characters
      {"\xff", "\\xff"},
      {"\xc3(", "\\xc3("},                            // a lead byte without its continuation
      {"\xc0\xaf", "\\xc0\\xaf"},                     // overlong '/'
      {"\xed\xa0\x80", "\\xed\\xa0\\x80"},            // a surrogate
      {"\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"},  // beyond U+10FFFF
      {"x\xe2\x82", "x\\xe2\\x82"},                   // cut short
  };
  for (const auto& [in, want] : cases) {
    EXPECT_EQ(escape_invalid_utf8(in), want);
    EXPECT_EQ(is_valid_utf8(in), in == want);
    EXPECT_NO_THROW((void)json(escape_invalid_utf8(in)).dump());
  }
  try {
    fail("piece '", std::string("\xff\xfe"), "'");
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "piece '\\xff\\xfe'");
  }
  std::ifstream in(test::data_dir() / "gguf/tiny_llama_bpe.gguf", std::ios::binary);
  std::string g((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t name = g.find("tiny test llama");
  ASSERT_NE(name, std::string::npos);
  g[name] = '\xff';
  const auto meta = GgufFile::open(write_temp("meta.gguf", g))->metadata_json(32);
  EXPECT_EQ(meta["general.name"], "\\xffiny test llama");
  EXPECT_NO_THROW((void)meta.dump());
  const size_t tensor = g.find("token_embd.weight");
  ASSERT_NE(tensor, std::string::npos);
  g[tensor] = '\xff';
  EXPECT_THROW(GgufFile::open(write_temp("name.gguf", g)), Error);
}

// gguf_fuzz: a block count of about 2^31 made the loader allocate a per-layer table for every
// claimed layer (ASan: out of memory) before finding that their tensors were missing
// (src/arch/load_weights.cc now compares the count with the file's tensors first).
TEST(FuzzRegression, GgufLayerCountBeyondItsTensors) {
  std::ifstream in(test::data_dir() / "gguf/tiny_llama_bpe.gguf", std::ios::binary);
  std::string g((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string key = "llama.block_count";
  const size_t at = g.find(key);
  ASSERT_NE(at, std::string::npos);
  const uint32_t layers = 0x7fffffffu;  // the value after the key's 4-byte type (uint32)
  std::memcpy(&g[at + key.size() + 4], &layers, 4);
  try {
    (void)Model::load(write_temp("layers.gguf", g));
    ADD_FAILURE() << "a layer count of 2^31 - 1 loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("2147483647 layers, but the checkpoint holds only"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace cascade
