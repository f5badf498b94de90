// Checkpoint readers: safetensors files and directories (written here by a tiny writer, so every
// field can be made wrong on purpose), llama2.c .bin files (a hand-made one whose every float is
// its own index, and stories260K from ../shared), and the Meta -> Hugging Face rotary reordering.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/checkpoint.h"
#include "io/mmap_file.h"
#include "io/rotary_layout.h"
#include "io/safetensors.h"
#include "io/safetensors_dir.h"
#include "support/test_paths.h"
#include "tokenizer/find_tokenizer.h"

namespace cascade {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct StTensor {
  std::string name, dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};

template <typename T>
std::string raw(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  ASSERT_TRUE(out.good()) << p;
}

// A safetensors file with header as given; claimed_len overrides the stored header length.
void write_raw_st(const fs::path& p, const std::string& header, const std::string& data,
                  std::optional<uint64_t> claimed_len = std::nullopt) {
  const uint64_t n = claimed_len.value_or(header.size());
  write_file(p, std::string(reinterpret_cast<const char*>(&n), 8) + header + data);
}

// A well-formed safetensors file; pad spaces after the JSON shift where the data starts (writers
// pad to 8 bytes; pad = 1 makes every tensor misaligned).
void write_st(const fs::path& p, const std::vector<StTensor>& ts, size_t pad = 0) {
  json h = {{"__metadata__", {{"format", "pt"}}}};
  std::string data;
  for (const auto& t : ts) {
    h[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {data.size(), data.size() + t.bytes.size()}}};
    data += t.bytes;
  }
  std::string header = h.dump();
  header.append((8 - header.size() % 8) % 8 + pad, ' ');
  write_raw_st(p, header, data);
}

// A header with one entry, for the malformed-entry tests.
std::string one_entry(const std::string& dtype, const json& shape, const json& offsets) {
  return json{{"w", {{"dtype", dtype}, {"shape", shape}, {"data_offsets", offsets}}}}.dump();
}

// Element i read through the const accessor (non-const data() of a read-only view throws).
const float& at(const Tensor& t, int64_t i) { return t.data()[i]; }

// Runs f and expects a cascade::Error whose message contains every needle.
template <typename F>
void expect_error(F&& f, std::initializer_list<std::string> needles) {
  try {
    f();
    ADD_FAILURE() << "expected a cascade::Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "message: " << msg << "\nmissing: " << n;
  }
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("cascade_ckpt_" + std::to_string(::getpid()) + "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

// ---- safetensors: good files ----

TEST_F(CheckpointTest, F32IsAZeroCopyViewThatKeepsTheMapAlive) {
  const fs::path p = dir_ / "a.safetensors";
  write_st(p, {{"w", "F32", {2, 3}, raw(std::vector<float>{0, 1, 2, 3, 4, 5})}});
  Tensor t;
  {
    SafetensorsFile f(p);
    t = f.load_f32("w");
    const auto* begin = reinterpret_cast<const float*>(f.mapped().data());
    const auto* end = reinterpret_cast<const float*>(f.mapped().data() + f.mapped().size());
    EXPECT_GE(&at(t, 0), begin);
    EXPECT_LT(&at(t, 0), end);
    EXPECT_EQ(&at(f.load_f32("w"), 0), &at(t, 0));
  }
  // The SafetensorsFile is gone; the view's shared ownership keeps the mapping readable.
  ASSERT_EQ(t.shape(), (std::vector<int64_t>{2, 3}));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(at(t, i), float(i));
  EXPECT_THROW(t.data()[0] = 1.0f, std::logic_error);  // non-const data() of a read-only view
}

TEST_F(CheckpointTest, MisalignedF32IsCopied) {
  const fs::path p = dir_ / "a.safetensors";
  write_st(p, {{"w", "F32", {3}, raw(std::vector<float>{1.5f, -2.0f, 3.25f})}}, /*pad=*/1);
  SafetensorsFile f(p);
  Tensor t = f.load_f32("w");
  EXPECT_NE(reinterpret_cast<uintptr_t>(f.mapped().data() + f.mapped().size() - 12) % 4, 0u);  // really misaligned
  EXPECT_NO_THROW(t.data()[0] = t.data()[0]);  // an owned copy is writable
  EXPECT_EQ(t.data()[0], 1.5f);
  EXPECT_EQ(t.data()[1], -2.0f);
  EXPECT_EQ(t.data()[2], 3.25f);
}

TEST_F(CheckpointTest, HalfAndBfloatWidenExactly) {
  const float inf = INFINITY;
  const std::vector<uint16_t> f16 = {0x0001, 0x8001, 0x03ff, 0x0400, 0x3555, 0xc000, 0x7bff, 0x7c00, 0xfc00, 0x8000, 0x7e00};
  const std::vector<float> f16_want = {std::ldexp(1.0f, -24), -std::ldexp(1.0f, -24), std::ldexp(1023.0f, -24), std::ldexp(1.0f, -14),
                                       0.333251953125f, -2.0f, 65504.0f, inf, -inf, -0.0f, NAN};
  const std::vector<uint16_t> bf16 = {0x0001, 0x807f, 0x3f80, 0xbf80, 0x4049, 0x7f7f, 0x7f80, 0xff80, 0x8000};
  const std::vector<float> bf16_want = {std::ldexp(1.0f, -133), -std::ldexp(127.0f, -133), 1.0f, -1.0f, 3.140625f,
                                        std::ldexp(255.0f, 120), inf, -inf, -0.0f};
  const fs::path p = dir_ / "a.safetensors";
  write_st(p, {{"h", "F16", {int64_t(f16.size())}, raw(f16)}, {"b", "BF16", {int64_t(bf16.size())}, raw(bf16)}});
  SafetensorsFile f(p);
  auto check = [](const Tensor& t, const std::vector<float>& want) {
    ASSERT_EQ(t.numel(), int64_t(want.size()));
    for (size_t i = 0; i < want.size(); ++i) {
      if (std::isnan(want[i])) {
        EXPECT_TRUE(std::isnan(t.data()[i])) << i;
      } else {
        EXPECT_EQ(t.data()[i], want[i]) << i;
        EXPECT_EQ(std::signbit(t.data()[i]), std::signbit(want[i])) << i;
      }
    }
  };
  check(f.load_f32("h"), f16_want);
  check(f.load_f32("b"), bf16_want);
  EXPECT_EQ(f.find("h")->dtype, "F16");
  EXPECT_EQ(f.find("b")->nbytes, bf16.size() * 2);
}

// The typed views the GPU upload reads: the stored dtype, a pointer into the mapping (misaligned
// data too), no copy; their widening is the per-element conversion, bit for bit.
TEST_F(CheckpointTest, TypedViewsReportTheStoredDtypeAndAliasTheMap) {
  std::vector<uint16_t> bits(64);
  for (size_t i = 0; i < bits.size(); ++i) bits[i] = uint16_t(0x3c00 + 977 * i);  // varied finite values
  std::vector<float> f32(bits.size());
  for (size_t i = 0; i < f32.size(); ++i) f32[i] = float(i) * 0.37f - 5.0f;
  for (size_t pad : {size_t(0), size_t(1)}) {
    const fs::path p = dir_ / ("v" + std::to_string(pad) + ".safetensors");
    write_st(p, {{"h", "F16", {8, 8}, raw(bits)}, {"b", "BF16", {8, 8}, raw(bits)}, {"f", "F32", {8, 8}, raw(f32)}}, pad);
    SafetensorsFile f(p);
    const uint8_t* begin = f.mapped().data();
    const uint8_t* end = begin + f.mapped().size();
    for (const auto& [name, dtype] : {std::pair{"h", DType::F16}, std::pair{"b", DType::BF16}, std::pair{"f", DType::F32}}) {
      const TensorView v = f.load(name);
      EXPECT_EQ(v.dtype, dtype) << name;
      EXPECT_EQ(v.shape, (std::vector<int64_t>{8, 8})) << name;
      EXPECT_TRUE(v.mapped) << name;
      const auto* data = static_cast<const uint8_t*>(v.data);
      EXPECT_GE(data, begin) << name;
      EXPECT_LE(data + v.nbytes(), end) << name;
      // Widening equals to_f32 of the stored bytes (what load_f32 always did), bit for bit.
      std::vector<uint8_t> aligned(v.nbytes());
      std::memcpy(aligned.data(), v.data, aligned.size());
      std::vector<float> want(64);
      to_f32(dtype, aligned.data(), want.data(), want.size());
      const Tensor t = f.load_f32(name);
      ASSERT_EQ(t.numel(), 64);
      EXPECT_EQ(std::memcmp(t.data(), want.data(), 64 * sizeof(float)), 0) << name << " pad " << pad;
      // Aligned F32 widens to the view itself.
      if (dtype == DType::F32 && pad == 0) EXPECT_EQ(static_cast<const void*>(t.data()), v.data);
    }
  }
}

TEST_F(CheckpointTest, DroppedPagesOfTheMapReadBackUnchanged) {
  std::vector<float> v(1 << 16);
  for (size_t i = 0; i < v.size(); ++i) v[i] = float(i);
  const fs::path p = dir_ / "a.safetensors";
  write_st(p, {{"w", "F32", {int64_t(v.size())}, raw(v)}});
  SafetensorsFile f(p);
  const TensorView view = f.load("w");
  MappedFile::drop_pages(view.data, view.nbytes());
  EXPECT_EQ(std::memcmp(view.data, v.data(), view.nbytes()), 0);
}

TEST_F(CheckpointTest, ShardedDirectoryWithIndexAndMixedDtypes) {
  const std::string s1 = "model-00001-of-00002.safetensors", s2 = "model-00002-of-00002.safetensors";
  write_st(dir_ / s1, {{"a", "F32", {2, 2}, raw(std::vector<float>{1, 2, 3, 4})},
                       {"b", "BF16", {3}, raw(std::vector<uint16_t>{0x3f80, 0x4000, 0xc040})}});
  write_st(dir_ / s2, {{"c", "F16", {2}, raw(std::vector<uint16_t>{0x3c00, 0xb800})},
                       {"ids", "I64", {2}, raw(std::vector<int64_t>{7, 9})}});
  write_file(dir_ / "model.safetensors.index.json",
             json{{"metadata", {{"total_size", 42}}}, {"weight_map", {{"a", s1}, {"b", s1}, {"c", s2}, {"ids", s2}}}}.dump());
  write_file(dir_ / "config.json", R"({"model_type": "llama", "hidden_size": 2})");
  write_file(dir_ / "tokenizer.json", "{}");

  const Checkpoint ck = open_checkpoint(dir_);
  EXPECT_EQ(ck.format, "safetensors");
  EXPECT_EQ(ck.config["hidden_size"], 2);
  EXPECT_EQ(ck.tokenizer_dir, dir_);
  EXPECT_EQ(find_tokenizer(ck.tokenizer_dir)->file, dir_ / "tokenizer.json");
  EXPECT_EQ(ck.format_metadata["files"].size(), 2u);

  const auto metas = ck.weights->list();
  ASSERT_EQ(metas.size(), 4u);
  EXPECT_EQ(metas[0].name, "a");
  EXPECT_EQ(metas[0].dtype, "F32");
  EXPECT_EQ(metas[0].shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(metas[1].dtype, "BF16");
  EXPECT_EQ(metas[2].dtype, "F16");
  EXPECT_EQ(metas[3].name, "ids");
  EXPECT_EQ(metas[3].dtype, "I64");
  EXPECT_EQ(metas[3].nbytes, 16u);

  EXPECT_TRUE(ck.weights->has("c"));
  EXPECT_FALSE(ck.weights->has("d"));
  EXPECT_EQ(at(ck.weights->load_f32("a"), 3), 4.0f);
  const Tensor b = ck.weights->load_f32("b");
  EXPECT_EQ(b.data()[0], 1.0f);
  EXPECT_EQ(b.data()[1], 2.0f);
  EXPECT_EQ(b.data()[2], -3.0f);
  const Tensor c = ck.weights->load_f32("c");
  EXPECT_EQ(c.data()[0], 1.0f);
  EXPECT_EQ(c.data()[1], -0.5f);
  expect_error([&] { ck.weights->load_f32("ids"); }, {(dir_ / s2).string(), "I64", "cannot be loaded as float32"});
  expect_error([&] { ck.weights->load_f32("d"); }, {dir_.string(), "'d'"});
}

TEST_F(CheckpointTest, SingleFileDirectoryWithoutTokenizer) {
  write_st(dir_ / "model.safetensors", {{"x", "F32", {1}, raw(std::vector<float>{7})}});
  write_file(dir_ / "config.json", R"({"model_type": "gpt2"})");
  const Checkpoint ck = open_checkpoint(dir_);
  EXPECT_FALSE(find_tokenizer(ck.tokenizer_dir));
  EXPECT_EQ(ck.weights->list().size(), 1u);
  EXPECT_EQ(at(ck.weights->load_f32("x"), 0), 7.0f);
}

// ---- bad input: each a cascade::Error naming the file ----

TEST_F(CheckpointTest, MissingDirectory) {
  const fs::path p = dir_ / "absent";
  expect_error([&] { open_checkpoint(p); }, {p.string(), "no such file or directory"});
}

TEST_F(CheckpointTest, MissingConfig) {
  write_st(dir_ / "model.safetensors", {{"x", "F32", {1}, raw(std::vector<float>{7})}});
  expect_error([&] { open_checkpoint(dir_); }, {(dir_ / "config.json").string(), "missing"});
}

TEST_F(CheckpointTest, MalformedConfig) {
  write_st(dir_ / "model.safetensors", {{"x", "F32", {1}, raw(std::vector<float>{7})}});
  write_file(dir_ / "config.json", R"({"model_type": )");
  expect_error([&] { open_checkpoint(dir_); }, {(dir_ / "config.json").string(), "malformed JSON", "parse error"});
}

TEST_F(CheckpointTest, DirectoryWithoutWeights) {
  write_file(dir_ / "config.json", "{}");
  expect_error([&] { open_checkpoint(dir_); }, {dir_.string(), "no model.safetensors"});
}

TEST_F(CheckpointTest, UnsupportedFormat) {
  const fs::path p = dir_ / "model.onnx";
  write_file(p, "onnx");
  expect_error([&] { open_checkpoint(p); }, {p.string(), "unsupported model format", "llama2.c .bin"});
}

TEST_F(CheckpointTest, EmptyFile) {
  const fs::path p = dir_ / "a.safetensors";
  write_file(p, "");
  expect_error([&] { SafetensorsFile f(p); }, {p.string(), "empty"});
}

TEST_F(CheckpointTest, HeaderLengthLargerThanFile) {
  const fs::path p = dir_ / "a.safetensors";
  const std::string header = one_entry("F32", {1}, {0, 4});
  write_raw_st(p, header, std::string(4, '\0'), header.size() + 100);
  expect_error([&] { SafetensorsFile f(p); }, {p.string(), "header length", "larger than the rest of the file"});
  write_raw_st(p, header, std::string(4, '\0'), uint64_t(1) << 62);
  expect_error([&] { SafetensorsFile f(p); }, {p.string(), "header length", "limit"});
}

TEST_F(CheckpointTest, MalformedHeaderJson) {
  const fs::path p = dir_ / "a.safetensors";
  write_raw_st(p, R"({"w": {"dtype": "F32",)", "");
  expect_error([&] { SafetensorsFile f(p); }, {p.string(), "malformed safetensors header JSON"});
}

TEST_F(CheckpointTest, TruncatedData) {
  const fs::path p = dir_ / "a.safetensors";
  write_st(p, {{"w", "F32", {4}, raw(std::vector<float>{1, 2, 3, 4})}});
  fs::resize_file(p, fs::file_size(p) - 3);
  expect_error([&] { SafetensorsFile f(p); }, {p.string(), "'w'", "truncated"});
}

TEST_F(CheckpointTest, OffsetsBeyondTheData) {
  const fs::path p = dir_ / "a.safetensors";
  write_raw_st(p, one_entry("F32", {4}, {8, 24}), std::string(16, '\0'));
  expect_error([&] { SafetensorsFile f(p); }, {p.string(), "'w'", "[8, 24]", "past the end of the data (16 bytes)"});
  write_raw_st(p, one_entry("F32", {0}, {8, 4}), std::string(16, '\0'));
  expect_error([&] { SafetensorsFile f(p); }, {p.string(), "end before they begin"});
  write_raw_st(p, one_entry("F32", {1}, {-4, 0}), std::string(16, '\0'));
  expect_error([&] { SafetensorsFile f(p); }, {p.string(), "non-negative"});
}

TEST_F(CheckpointTest, OverlappingTensors) {
  const fs::path p = dir_ / "a.safetensors";
  const json h = {{"u", {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {0, 8}}}},
                  {"v", {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {4, 12}}}}};
  write_raw_st(p, h.dump(), std::string(12, '\0'));
  expect_error([&] { SafetensorsFile f(p); }, {p.string(), "'u'", "'v'", "overlap"});
}

TEST_F(CheckpointTest, ShapeSizeMismatch) {
  const fs::path p = dir_ / "a.safetensors";
  write_raw_st(p, one_entry("F32", {2, 3}, {0, 20}), std::string(20, '\0'));
  expect_error([&] { SafetensorsFile f(p); }, {p.string(), "'w'", "[2, 3]", "needs 24 bytes", "give 20"});
}

TEST_F(CheckpointTest, ShapeClaimingTwoToTheFortyElements) {
  const fs::path p = dir_ / "a.safetensors";
  write_raw_st(p, one_entry("F32", {1 << 20, 1 << 20}, {0, 16}), std::string(16, '\0'));
  expect_error([&] { SafetensorsFile f(p); }, {p.string(), "'w'", "[1048576, 1048576]", "needs 4398046511104 bytes", "give 16"});
  // A product past 2^64 must not wrap around to a plausible value (2^96 * 4 = 0 mod 2^64).
  const uint64_t big = uint64_t(1) << 32;
  write_raw_st(p, one_entry("F32", {big, big, big}, {0, 0}), "x");
  expect_error([&] { SafetensorsFile f(p); }, {p.string(), "'w'", "larger than 2^64 bytes"});
}

TEST_F(CheckpointTest, UnknownDtype) {
  const fs::path p = dir_ / "a.safetensors";
  write_raw_st(p, one_entry("Q9", {1}, {0, 4}), std::string(4, '\0'));
  expect_error([&] { SafetensorsFile f(p); }, {p.string(), "'w'", "unknown dtype 'Q9'"});
}

TEST_F(CheckpointTest, IndexNamingAMissingShard) {
  write_st(dir_ / "s1.safetensors", {{"a", "F32", {1}, raw(std::vector<float>{1})}});
  write_file(dir_ / "model.safetensors.index.json", json{{"weight_map", {{"a", "s1.safetensors"}, {"b", "s2.safetensors"}}}}.dump());
  write_file(dir_ / "config.json", "{}");
  expect_error([&] { open_checkpoint(dir_); }, {(dir_ / "model.safetensors.index.json").string(), "'s2.safetensors'", "missing"});
}

TEST_F(CheckpointTest, IndexNamingATensorAbsentFromItsShard) {
  write_st(dir_ / "s1.safetensors", {{"a", "F32", {1}, raw(std::vector<float>{1})}});
  write_file(dir_ / "model.safetensors.index.json", json{{"weight_map", {{"a", "s1.safetensors"}, {"b", "s1.safetensors"}}}}.dump());
  expect_error([&] { SafetensorsDir d(dir_); }, {(dir_ / "model.safetensors.index.json").string(), "'b'", "no such tensor"});
}

TEST_F(CheckpointTest, IndexShardOutsideTheDirectory) {
  write_file(dir_ / "model.safetensors.index.json", json{{"weight_map", {{"a", "../s1.safetensors"}}}}.dump());
  expect_error([&] { SafetensorsDir d(dir_); }, {(dir_ / "model.safetensors.index.json").string(), "not a plain file name"});
}

// ---- llama2.c ----

// Writes a llama2.c file whose k-th float (after the header) is k.
void write_llama2c(const fs::path& p, std::vector<int32_t> header, size_t n_floats) {
  std::vector<float> w(n_floats);
  for (size_t i = 0; i < n_floats; ++i) w[i] = float(i);
  write_file(p, raw(header) + raw(w));
}

TEST_F(CheckpointTest, Llama2cLayoutNamesAndRotaryOrder) {
  // dim 8, hidden 4, 2 layers, 2 heads (head size 4), 1 kv head, unshared classifier of 5 rows, seq 3.
  // Floats: embed 40, per layer 8 + 64 + 32 + 32 + 64 + 8 + 32 + 32 + 32 = 304, norm 8, freq_cis 12, classifier 40.
  const fs::path p = dir_ / "tiny.bin";
  write_llama2c(p, {8, 4, 2, 2, 1, -5, 3}, 40 + 2 * 304 + 8 + 12 + 40);
  write_file(dir_ / "tok5.bin", "t");
  const Checkpoint ck = open_checkpoint(p);
  EXPECT_EQ(ck.format, "llama2c");
  EXPECT_EQ(find_tokenizer(ck.tokenizer_dir, 5)->file, dir_ / "tok5.bin");
  EXPECT_EQ(ck.config["vocab_size"], 5);
  EXPECT_EQ(ck.config["tie_word_embeddings"], false);
  EXPECT_EQ(ck.config["num_key_value_heads"], 1);
  EXPECT_EQ(ck.weights->list().size(), 3u + 2u * 9u);

  const WeightSource& w = *ck.weights;
  // Stacked arrays: attention norms start after the embedding, one dim-row per layer.
  EXPECT_EQ(at(w.load_f32("model.embed_tokens.weight"), 39), 39.0f);
  EXPECT_EQ(at(w.load_f32("model.layers.1.input_layernorm.weight"), 0), 48.0f);
  // q: block at 56, layer 0, rows of 8; HF row j of each 4-row head is Meta row [0, 2, 1, 3][j].
  const int perm[] = {0, 2, 1, 3, 4, 6, 5, 7};
  const Tensor q = w.load_f32("model.layers.0.self_attn.q_proj.weight");
  ASSERT_EQ(q.shape(), (std::vector<int64_t>{8, 8}));
  for (int r = 0; r < 8; ++r)
    for (int c = 0; c < 8; ++c) EXPECT_EQ(q.row(r)[c], float(56 + perm[r] * 8 + c)) << r << "," << c;
  // k: block at 56 + 2*64 = 184, layer 1 at +32, one kv head of 4 rows.
  const Tensor k = w.load_f32("model.layers.1.self_attn.k_proj.weight");
  ASSERT_EQ(k.shape(), (std::vector<int64_t>{4, 8}));
  for (int r = 0; r < 4; ++r) EXPECT_EQ(k.row(r)[0], float(184 + 32 + perm[r] * 8)) << r;
  // v is not reordered: block at 184 + 64 = 248.
  EXPECT_EQ(at(w.load_f32("model.layers.0.self_attn.v_proj.weight"), 8), 256.0f);  // row 1
  // w1 = gate, w2 = down, w3 = up: blocks at 248+64+128+16 = 456, +64, +64.
  EXPECT_EQ(at(w.load_f32("model.layers.0.mlp.gate_proj.weight"), 0), 456.0f);
  EXPECT_EQ(w.load_f32("model.layers.0.mlp.down_proj.weight").shape(), (std::vector<int64_t>{8, 4}));
  EXPECT_EQ(at(w.load_f32("model.layers.0.mlp.down_proj.weight"), 0), 520.0f);
  EXPECT_EQ(at(w.load_f32("model.layers.0.mlp.up_proj.weight"), 0), 584.0f);
  EXPECT_EQ(at(w.load_f32("model.norm.weight"), 0), 648.0f);
  // The unshared classifier follows the skipped freq_cis tables.
  EXPECT_EQ(at(w.load_f32("lm_head.weight"), 0), 668.0f);
}

TEST_F(CheckpointTest, Llama2cWrongSize) {
  const fs::path p = dir_ / "tiny.bin";
  write_llama2c(p, {8, 4, 2, 2, 1, -5, 3}, 40 + 2 * 304 + 8 + 12 + 40 - 1);
  expect_error([&] { open_checkpoint(p); }, {p.string(), "implies 2860 bytes", "has 2856"});
  // Absurd headers: a product past 2^64, and a huge layer count that must not be expanded first.
  write_llama2c(p, {1 << 30, 1 << 30, 1 << 30, 1, 1, 1 << 30, 1 << 30}, 4);
  expect_error([&] { open_checkpoint(p); }, {p.string(), "impossibly large"});
  write_llama2c(p, {8, 4, 1 << 30, 2, 1, 5, 3}, 4);
  expect_error([&] { open_checkpoint(p); }, {p.string(), "implies", "has 44"});
  write_llama2c(p, {8, 4, 2, 3, 1, 5, 3}, 4);
  expect_error([&] { open_checkpoint(p); }, {p.string(), "invalid llama2.c header", "n_heads"});
}

TEST_F(CheckpointTest, Stories260K) {
  const auto path = test::bundled_model_dir() / "stories260K.bin";
  const Checkpoint ck = open_checkpoint(path);
  const json& c = ck.config;
  EXPECT_EQ(c["hidden_size"], 64);
  EXPECT_EQ(c["intermediate_size"], 172);
  EXPECT_EQ(c["num_hidden_layers"], 5);
  EXPECT_EQ(c["num_attention_heads"], 8);
  EXPECT_EQ(c["num_key_value_heads"], 4);
  EXPECT_EQ(c["vocab_size"], 512);
  EXPECT_EQ(c["max_position_embeddings"], 512);
  EXPECT_EQ(c["tie_word_embeddings"], true);
  EXPECT_EQ(find_tokenizer(ck.tokenizer_dir, 512)->file, path.parent_path() / "tok512.bin");

  using Shape = std::vector<int64_t>;
  const std::vector<std::pair<std::string, Shape>> per_layer = {
      {"input_layernorm.weight", {64}},          {"self_attn.q_proj.weight", {64, 64}},
      {"self_attn.k_proj.weight", {32, 64}},     {"self_attn.v_proj.weight", {32, 64}},
      {"self_attn.o_proj.weight", {64, 64}},     {"post_attention_layernorm.weight", {64}},
      {"mlp.gate_proj.weight", {172, 64}},       {"mlp.down_proj.weight", {64, 172}},
      {"mlp.up_proj.weight", {172, 64}}};
  std::map<std::string, Shape> want = {
      {"model.embed_tokens.weight", {512, 64}}, {"model.norm.weight", {64}}, {"lm_head.weight", {512, 64}}};
  for (int l = 0; l < 5; ++l)
    for (const auto& [suffix, shape] : per_layer) want["model.layers." + std::to_string(l) + "." + suffix] = shape;
  const auto metas = ck.weights->list();
  ASSERT_EQ(metas.size(), want.size());
  for (const auto& m : metas) {
    ASSERT_TRUE(want.count(m.name)) << m.name;
    EXPECT_EQ(m.shape, want[m.name]) << m.name;
    EXPECT_EQ(m.dtype, "F32");
    EXPECT_EQ(ck.weights->load_f32(m.name).shape(), want[m.name]) << m.name;
  }
  // Shared classifier: lm_head is the embedding itself.
  EXPECT_EQ(&at(ck.weights->load_f32("lm_head.weight"), 0), &at(ck.weights->load_f32("model.embed_tokens.weight"), 0));
}

// ---- rotary layout ----

TEST(RotaryLayout, ReordersRowsWithinEachHead) {
  Tensor w = Tensor::zeros({8, 2});
  for (int r = 0; r < 8; ++r) w.row(r)[0] = float(r), w.row(r)[1] = float(10 * r);
  const Tensor out = meta_to_hf_rotary_rows(w, 2);
  const int want[] = {0, 2, 1, 3, 4, 6, 5, 7};
  for (int r = 0; r < 8; ++r) {
    EXPECT_EQ(out.row(r)[0], float(want[r])) << r;
    EXPECT_EQ(out.row(r)[1], float(10 * want[r])) << r;
  }
  expect_error([&] { meta_to_hf_rotary_rows(w, 3); }, {"8 rows", "3 heads"});
  expect_error([&] { meta_to_hf_rotary_rows(Tensor::zeros({6, 1}), 2); }, {"even head size"});
}

// The reordering is right when Hugging Face's rotary (halves) applied to the reordered projection
// gives the same attention scores as llama2.c's rotary (interleaved pairs) on the original one.
TEST(RotaryLayout, InterleavedAndHalfRotaryGiveTheSameScores) {
  const int heads = 2, hd = 8, dim = 5;
  Tensor wq = Tensor::zeros({heads * hd, dim}), wk = Tensor::zeros({heads * hd, dim});
  std::vector<float> x(dim), y(dim);
  uint32_t s = 12345;
  auto rnd = [&] { return (s = s * 1664525u + 1013904223u) / 4294967296.0f - 0.5f; };
  for (int i = 0; i < heads * hd * dim; ++i) wq.data()[i] = rnd(), wk.data()[i] = rnd();
  for (int i = 0; i < dim; ++i) x[i] = rnd(), y[i] = rnd();
  auto project = [&](const Tensor& w, const std::vector<float>& v) {
    std::vector<float> out(size_t(w.dim(0)));
    for (int64_t r = 0; r < w.dim(0); ++r)
      for (int c = 0; c < dim; ++c) out[size_t(r)] += w.row(r)[c] * v[size_t(c)];
    return out;
  };
  // Rotates each head's pair (a, b) = (i, i + 1) interleaved or (i, i + hd/2) halves, pair i by pos * theta_i.
  auto rotate = [&](std::vector<float> v, int pos, bool interleaved) {
    for (int h = 0; h < heads; ++h)
      for (int i = 0; i < hd / 2; ++i) {
        const int a = h * hd + (interleaved ? 2 * i : i), b = interleaved ? a + 1 : a + hd / 2;
        const double ang = pos * std::pow(10000.0, -2.0 * i / hd);
        const double va = v[size_t(a)], vb = v[size_t(b)];
        v[size_t(a)] = float(va * std::cos(ang) - vb * std::sin(ang));
        v[size_t(b)] = float(va * std::sin(ang) + vb * std::cos(ang));
      }
    return v;
  };
  auto scores = [&](const std::vector<float>& q, const std::vector<float>& k) {
    std::vector<double> out(heads);
    for (int h = 0; h < heads; ++h)
      for (int j = 0; j < hd; ++j) out[size_t(h)] += double(q[size_t(h * hd + j)]) * k[size_t(h * hd + j)];
    return out;
  };
  const auto meta = scores(rotate(project(wq, x), 7, true), rotate(project(wk, y), 3, true));
  const auto hf = scores(rotate(project(meta_to_hf_rotary_rows(wq, heads), x), 7, false),
                         rotate(project(meta_to_hf_rotary_rows(wk, heads), y), 3, false));
  const auto unpermuted = scores(rotate(project(wq, x), 7, false), rotate(project(wk, y), 3, false));
  for (int h = 0; h < heads; ++h) {
    EXPECT_NEAR(hf[size_t(h)], meta[size_t(h)], 1e-5) << h;
    EXPECT_GT(std::abs(unpermuted[size_t(h)] - meta[size_t(h)]), 1e-3) << h;  // the test can tell the layouts apart
  }
}

}  // namespace
}  // namespace cascade
