// Tokenizer tests. The reference ids in tests/data/tokenizer/ and tests/data/ref/{neox,llama}/ were
// made with Hugging Face `tokenizers` (scripts/make_fixtures.py); the full GPT-2 and Llama-2
// vocabularies come from ../shared and those tests skip when it is absent. Hand-made vocabularies
// pin down the rules no reference file isolates (merge order, dummy prefix, added tokens).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unistd.h>

#include "core/error.h"
#include "io/npy.h"
#include "support/sanitizers.h"
#include "support/test_paths.h"
#include "tokenizer/gpt2_pretokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace cascade {
namespace {

namespace fs = std::filesystem;
using Ids = std::vector<int32_t>;
const std::string kGpt2Encoder = "models/gpt2-tokenizer/encoder.json";
const std::string kGpt2Merges = "models/gpt2-tokenizer/vocab.bpe";
const std::string kLlamaBin = "models/llama2-tokenizer/tokenizer.bin";
const std::string kWikiText = "data/wikitext-2-raw/wiki.test.raw";

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
}

// A fresh directory per test, removed at the end.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() / ("cascade_tok_" + std::string(info->name()) + "_" +
                                         std::to_string(::getpid()));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

struct Case {
  std::string text;
  Ids ids;
};

std::vector<Case> read_cases(const fs::path& file) {
  std::vector<Case> cases;
  for (const auto& c : nlohmann::json::parse(read_file(file)))
    cases.push_back({c.at("text").get<std::string>(), c.at("ids").get<Ids>()});
  EXPECT_FALSE(cases.empty()) << file;
  return cases;
}

std::string without(std::string text, const std::string& token) {
  if (token.empty()) return text;
  for (size_t pos; (pos = text.find(token)) != std::string::npos;) text.erase(pos, token.size());
  return text;
}

void expect_cases(const Tokenizer& tok, const std::vector<Case>& cases, const std::string& special) {
  for (const auto& c : cases) {
    const Ids ids = tok.encode(c.text, false);
    EXPECT_EQ(ids, c.ids) << "text: \"" << c.text << "\"";
    EXPECT_EQ(tok.decode(ids), without(c.text, special)) << "text: \"" << c.text << "\"";
  }
}

// WikiText lines as the Llama reference cut them: on "\n", a trailing "\r" dropped, empty skipped.
std::vector<std::string> wikitext_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.ends_with('\r')) line.pop_back();
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

// Encodes every line; returns how many lines differ from the reference (and reports the first).
int count_line_mismatches(const Tokenizer& tok, const std::vector<std::string>& lines) {
  const auto ref = read_npy(test::data_dir() / "tokenizer/llama_wikitext_ids.npy").to_int32("ids");
  const auto lens = read_npy(test::data_dir() / "tokenizer/llama_wikitext_lens.npy").to_int32("lens");
  EXPECT_EQ(lens.size(), lines.size());
  int bad = 0;
  size_t offset = 0;
  for (size_t i = 0; i < lines.size() && i < lens.size(); ++i) {
    const Ids want(ref.begin() + offset, ref.begin() + offset + lens[i]);
    offset += lens[i];
    const Ids got = tok.encode(lines[i], false);
    if (got != want && bad++ == 0) ADD_FAILURE() << "first differing line " << i << ": " << lines[i];
    EXPECT_EQ(tok.decode(got), lines[i]);
  }
  EXPECT_EQ(offset, ref.size());
  return bad;
}

// Long id lists: report the first difference rather than print them whole.
void expect_same_ids(const Ids& got, const Ids& want) {
  EXPECT_EQ(got.size(), want.size());
  const auto [g, w] = std::mismatch(got.begin(), got.end(), want.begin(), want.end());
  if (g != got.end() && w != want.end())
    ADD_FAILURE() << "first difference at token " << (g - got.begin()) << ": " << *g << " vs " << *w;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// ---- GPT-2 pre-tokenizer (expected splits from Python's `regex` with the GPT-2 pattern)

TEST(Gpt2Pretokenizer, MatchesTheRegexOnSpacesContractionsAndUnicode) {
  using V = std::vector<std::string_view>;
  EXPECT_EQ(gpt2_pretokenize("Hello  world\n\n"), (V{"Hello", " ", " world", "\n\n"}));
  EXPECT_EQ(gpt2_pretokenize("I'm  here's"), (V{"I", "'m", " ", " here", "'s"}));
  EXPECT_EQ(gpt2_pretokenize("a \n\nb"), (V{"a", " \n", "\n", "b"}));
  EXPECT_EQ(gpt2_pretokenize("\u3000x 12ab"), (V{"\u3000", "x", " 12", "ab"}));
  EXPECT_EQ(gpt2_pretokenize(" ?!  "), (V{" ?!", "  "}));
  EXPECT_EQ(gpt2_pretokenize("e\u0301t\u00e9 日本語 123"), (V{"e", "\u0301", "t\u00e9", " 日本語", " 123"}));
  EXPECT_EQ(gpt2_pretokenize("a\xff\xfe b"), (V{"a", "\xff\xfe", " b"}));  // invalid UTF-8 is "other"
}

// ---- byte-level BPE on the real GPT-2 vocabulary

TEST(ByteBpe, Gpt2HardStringsMatchHuggingFace) {
  CASCADE_REQUIRE_SHARED(encoder, kGpt2Encoder);
  const auto tok = load_tokenizer(encoder.parent_path());  // OpenAI's encoder.json + vocab.bpe names
  EXPECT_EQ(tok->kind(), "byte-bpe");
  EXPECT_EQ(tok->vocab_size(), 50257);
  EXPECT_EQ(tok->bos_id(), 50256);
  EXPECT_EQ(tok->eos_id(), 50256);
  EXPECT_EQ(tok->encode("Hello world", true), (Ids{15496, 995}));  // GPT-2 adds no prefix
  expect_cases(*tok, read_cases(test::data_dir() / "tokenizer/gpt2_hard.json"), "<|endoftext|>");
}

TEST(ByteBpe, Gpt2WholeWikiTextMatchesHuggingFace) {
  CASCADE_REQUIRE_SHARED(encoder, kGpt2Encoder);
  CASCADE_REQUIRE_SHARED(wiki, kWikiText);
  const auto tok = load_tokenizer(encoder.parent_path());
  const std::string text = read_file(wiki);
  const auto t0 = std::chrono::steady_clock::now();
  const Ids ids = tok->encode(text, false);
  const double secs = seconds_since(t0);
  std::cout << "GPT-2 encode of " << text.size() << " bytes -> " << ids.size() << " tokens: " << secs << " s\n";
  expect_same_ids(ids, read_npy(test::data_dir() / "tokenizer/gpt2_wikitext_ids.npy").to_int32("ids"));
  EXPECT_TRUE(tok->decode(ids) == text);
}

// The same vocabulary through the tokenizer.json reader, written here as GPT-2's own file is.
TEST(ByteBpe, TokenizerJsonGivesTheSameIds) {
  CASCADE_REQUIRE_SHARED(encoder, kGpt2Encoder);
  CASCADE_REQUIRE_SHARED(merges_file, kGpt2Merges);
  CASCADE_REQUIRE_SHARED(wiki, kWikiText);
  TempDir dir;
  nlohmann::json merges = nlohmann::json::array();
  std::stringstream lines(read_file(merges_file));
  std::string line;
  std::getline(lines, line);  // "#version: 0.2"
  while (std::getline(lines, line))
    if (!line.empty()) merges.push_back(line);
  const nlohmann::json j = {
      {"version", "1.0"},
      {"added_tokens", {{{"id", 50256}, {"content", "<|endoftext|>"}, {"special", true}}}},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
      {"post_processor", {{"type", "ByteLevel"}, {"trim_offsets", false}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model",
       {{"type", "BPE"}, {"vocab", nlohmann::json::parse(read_file(encoder))}, {"merges", merges}}}};
  write_file(dir.path() / "tokenizer.json", j.dump());
  const auto tok = load_tokenizer(dir.path());
  EXPECT_EQ(tok->kind(), "byte-bpe");
  expect_cases(*tok, read_cases(test::data_dir() / "tokenizer/gpt2_hard.json"), "<|endoftext|>");
  expect_same_ids(tok->encode(read_file(wiki), false),
                  read_npy(test::data_dir() / "tokenizer/gpt2_wikitext_ids.npy").to_int32("ids"));
}

// OPT: GPT-2's merges with its own ids, "</s>" as bos prepended by add_special.
TEST(ByteBpe, OptStyleConfigPrependsItsBos) {
  CASCADE_REQUIRE_SHARED(encoder, kGpt2Encoder);
  CASCADE_REQUIRE_SHARED(merges_file, kGpt2Merges);
  TempDir dir;
  nlohmann::json vocab = {{"<s>", 0}, {"<pad>", 1}, {"</s>", 2}, {"<unk>", 3}};
  const auto gpt2 = nlohmann::json::parse(read_file(encoder));
  for (const auto& [token, id] : gpt2.items())
    if (token != "<|endoftext|>") vocab[token] = id.get<int>() + 4;
  write_file(dir.path() / "vocab.json", vocab.dump());
  fs::copy_file(merges_file, dir.path() / "merges.txt");
  write_file(dir.path() / "tokenizer_config.json",
             R"({"add_bos_token": true, "bos_token": {"__type": "AddedToken", "content": "</s>"},
                 "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "</s>"})");
  const auto tok = load_tokenizer(dir.path());
  EXPECT_EQ(tok->bos_id(), 2);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->encode("Hello world", true), (Ids{2, 15496 + 4, 995 + 4}));
  EXPECT_EQ(tok->encode("Hello world", false), (Ids{15496 + 4, 995 + 4}));
  EXPECT_EQ(tok->encode("a</s>b<pad>", false), (Ids{64 + 4, 2, 65 + 4, 1}));  // specials matched literally
  EXPECT_EQ(tok->decode(Ids{2, 15496 + 4, 1}), "Hello");
}

// ---- the committed tiny Hugging Face tokenizer.json files

TEST(ByteBpe, TinyNeoxTokenizerJsonMatchesHuggingFace) {
  const auto tok = load_tokenizer(test::data_dir() / "models/neox");
  EXPECT_EQ(tok->kind(), "byte-bpe");
  EXPECT_EQ(tok->eos_id(), 0);
  expect_cases(*tok, read_cases(test::data_dir() / "ref/neox/tokenizer_hard.json"), "<|endoftext|>");
  EXPECT_EQ(tok->encode("<|endoftext|>", true), Ids{0});  // add_bos_token false
}

TEST(SentencePiece, TinyLlamaTokenizerJsonMatchesHuggingFace) {
  const auto tok = load_tokenizer(test::data_dir() / "models/llama/tokenizer.json");
  EXPECT_EQ(tok->kind(), "sentencepiece-bpe");
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  // Its byte pieces are special added tokens in the file, yet decode as bytes (the emoji cases).
  expect_cases(*tok, read_cases(test::data_dir() / "ref/llama/tokenizer_hard.json"), "");
  const Ids with_bos = tok->encode("Hello world", true);
  ASSERT_FALSE(with_bos.empty());
  EXPECT_EQ(with_bos[0], 1);
  EXPECT_EQ(Ids(with_bos.begin() + 1, with_bos.end()), tok->encode("Hello world", false));
}

// ---- sentencepiece BPE on the real Llama-2 vocabulary

// The Llama tokenizer.json the reference was made with: HF's BPE built from tokenizer.bin, merges
// being every split of a piece into two pieces, ranked by the piece's score (as scripts/
// make_fixtures.py does; the 3.6 MB file is rebuilt here rather than committed).
void write_llama_tokenizer_json(const fs::path& bin, const fs::path& out) {
  const std::string data = read_file(bin);
  std::vector<std::string> pieces;
  std::vector<float> scores;
  for (size_t pos = 4; pos < data.size();) {
    float score;
    int32_t len;
    std::memcpy(&score, data.data() + pos, 4);
    std::memcpy(&len, data.data() + pos + 4, 4);
    std::string piece;
    for (char c : data.substr(pos + 8, len)) piece += c == ' ' ? std::string("\u2581") : std::string(1, c);
    pieces.push_back(piece);
    scores.push_back(score);
    pos += 8 + len;
  }
  pieces[1] = "<s>";  // llama2.c's exporter wrote "\n<s>\n" and "\n</s>\n"
  pieces[2] = "</s>";
  nlohmann::json vocab = nlohmann::json::object();
  for (size_t i = 0; i < pieces.size(); ++i) vocab[pieces[i]] = i;
  struct M {
    float score;
    int a, b;
    std::string left, right;
  };
  std::vector<M> ms;
  for (size_t i = 259; i < pieces.size(); ++i)
    for (size_t k = 1; k < pieces[i].size(); ++k) {
      const std::string l = pieces[i].substr(0, k), r = pieces[i].substr(k);
      if (vocab.contains(l) && vocab.contains(r)) ms.push_back({scores[i], vocab[l], vocab[r], l, r});
    }
  std::stable_sort(ms.begin(), ms.end(), [](const M& x, const M& y) {
    return std::tie(y.score, x.a, x.b) < std::tie(x.score, y.a, y.b);
  });
  nlohmann::json merges = nlohmann::json::array();
  for (const auto& m : ms) merges.push_back({m.left, m.right});
  nlohmann::json added = nlohmann::json::array();
  for (int id : {0, 1, 2}) added.push_back({{"id", id}, {"content", pieces[id]}, {"special", true}});
  const nlohmann::json j = {
      {"added_tokens", added},
      {"normalizer",
       {{"type", "Sequence"},
        {"normalizers",
         {{{"type", "Prepend"}, {"prepend", "\u2581"}},
          {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\u2581"}}}}}},
      {"pre_tokenizer", nullptr},
      {"post_processor", nullptr},
      {"model",
       {{"type", "BPE"}, {"unk_token", "<unk>"}, {"byte_fallback", true}, {"fuse_unk", true},
        {"vocab", vocab}, {"merges", merges}}}};
  write_file(out, j.dump());
}

TEST(SentencePiece, Llama2TokenizerBinMatchesHuggingFaceOnHardStrings) {
  CASCADE_REQUIRE_SHARED(bin, kLlamaBin);
  const auto tok = load_tokenizer(bin);
  EXPECT_EQ(tok->kind(), "sentencepiece-bpe");
  EXPECT_EQ(tok->vocab_size(), 32000);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->encode("Hello world", true), (Ids{1, 15043, 3186}));
  expect_cases(*tok, read_cases(test::data_dir() / "tokenizer/llama_hard.json"), "");
}

TEST(SentencePiece, Llama2TokenizerBinMatchesHuggingFaceOnEveryWikiTextLine) {
  CASCADE_REQUIRE_SHARED(bin, kLlamaBin);
  CASCADE_REQUIRE_SHARED(wiki, kWikiText);
  const auto tok = load_tokenizer(bin);
  const auto lines = wikitext_lines(read_file(wiki));
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(count_line_mismatches(*tok, lines), 0);
  std::cout << "Llama tokenizer.bin (by score): " << lines.size() << " lines in " << seconds_since(t0) << " s\n";
}

TEST(SentencePiece, Llama2TokenizerJsonByRankMatchesHuggingFace) {
  CASCADE_REQUIRE_SHARED(bin, kLlamaBin);
  CASCADE_REQUIRE_SHARED(wiki, kWikiText);
  TempDir dir;
  write_llama_tokenizer_json(bin, dir.path() / "tokenizer.json");
  const auto tok = load_tokenizer(dir.path() / "tokenizer.json");
  expect_cases(*tok, read_cases(test::data_dir() / "tokenizer/llama_hard.json"), "");
  const auto lines = wikitext_lines(read_file(wiki));
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(count_line_mismatches(*tok, lines), 0);
  std::cout << "Llama tokenizer.json (by rank): " << lines.size() << " lines in " << seconds_since(t0) << " s\n";
}

// One word of 10k characters: the merge loop must not be quadratic. The time bound holds in a plain
// build only: a sanitized one runs several times slower, and no bound would then be both safe and tight.
TEST(SentencePiece, LongLineIsFast) {
  CASCADE_REQUIRE_SHARED(bin, kLlamaBin);
  const auto tok = load_tokenizer(bin);
  std::string text;
  while (text.size() < 10000) text += "thequickbrownfoxjumpsoverthelazydog";
  const auto t0 = std::chrono::steady_clock::now();
  const Ids ids = tok->encode(text, false);
  const double secs = seconds_since(t0);
  std::cout << "Llama tokenizer.bin: one word of " << text.size() << " characters in " << secs << " s\n";
  if (!test::kSanitized) EXPECT_LT(secs, 1.0);
  EXPECT_EQ(tok->decode(ids), text);
}

TEST(SentencePiece, Stories260KTokenizerRoundTripsEnglish) {
  CASCADE_REQUIRE_SHARED(bin, "models/stories260K/tok512.bin");
  const auto tok = load_tokenizer(bin);
  EXPECT_EQ(tok->vocab_size(), 512);
  // Ids from llama2.c's own encode() algorithm, run in Python on the same file.
  EXPECT_EQ(tok->encode("Once upon a time, there was a little girl named Lily.", true),
            (Ids{1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426}));
  EXPECT_EQ(tok->encode("Lily saw a big dog! \U0001F600", false),
            (Ids{317, 394, 261, 370, 400, 428, 443, 410, 243, 162, 155, 131}));  // emoji as bytes
  for (const std::string text : {"Once upon a time, there was a little girl named Lily.",
                                 "She liked to play outside.\nOne day, she saw a big red ball!",
                                 "  Tom said, \"Let's go to the park.\""}) {
    const Ids ids = tok->encode(text, true);
    EXPECT_EQ(tok->decode(ids), text);
  }
}

// ---- rules pinned with hand-made vocabularies

// Pieces a b c ab bc ▁ ▁a (ids 3..9); "▁" is the space mark.
SentencePieceVocab small_sp_vocab() {
  SentencePieceVocab v;
  v.pieces = {"<unk>", "<s>", "</s>", "a", "b", "c", "ab", "bc", "\u2581", "\u2581a"};
  v.scores = {0, 0, 0, 0, 0, 0, -2, -1, 0, -5};
  v.special_ids = {0, 1, 2};
  v.unk = 0;
  v.bos = 1;
  v.eos = 2;
  v.add_dummy_prefix = false;
  return v;
}

TEST(SentencePiece, ScoreMergesBestFirstAndLeftmostOnTies) {
  auto tok = make_sentencepiece_bpe(small_sp_vocab());
  EXPECT_EQ(tok->encode("abc", false), (Ids{3, 7}));      // bc (-1) beats ab (-2)
  EXPECT_EQ(tok->encode("bcbc", false), (Ids{7, 7}));
  EXPECT_EQ(tok->encode("bbcc", false), (Ids{4, 7, 5}));  // the only mergeable pair is in the middle
  EXPECT_EQ(tok->encode("x", false), (Ids{0}));           // no piece, no byte pieces: <unk>
  auto v = small_sp_vocab();
  v.scores[6] = v.scores[7] = -1;                         // ab and bc tie: the leftmost pair wins
  EXPECT_EQ(make_sentencepiece_bpe(v)->encode("abc", false), (Ids{6, 5}));
}

TEST(SentencePiece, RankMergesFollowTheMergeList) {
  auto v = small_sp_vocab();
  v.merges = {{"a", "b"}, {"b", "c"}};  // ranks override the scores
  EXPECT_EQ(make_sentencepiece_bpe(v)->encode("abc", false), (Ids{6, 5}));
}

TEST(SentencePiece, DummyPrefixRules) {
  auto v = small_sp_vocab();
  v.add_dummy_prefix = true;
  auto every = make_sentencepiece_bpe(v);  // sentencepiece / Prepend normalizer
  EXPECT_EQ(every->encode("a</s>a", false), (Ids{9, 2, 9}));
  EXPECT_EQ(every->encode(" a", false), (Ids{8, 9}));
  EXPECT_EQ(every->decode(Ids{8, 9}), " a");  // the first token's space is the dummy prefix's
  v.prefix_unless_space = true;
  v.prefix_only_first_segment = true;
  auto first = make_sentencepiece_bpe(v);  // Metaspace, prepend_scheme "first"
  EXPECT_EQ(first->encode("a</s>a", false), (Ids{9, 2, 3}));
  EXPECT_EQ(first->encode(" a", false), (Ids{9}));
  EXPECT_EQ(first->encode("", true), Ids{1});
}

// Token b is byte b written in GPT-2's byte alphabet (printable bytes are themselves, the rest start
// at U+0100), except that the slot of each byte in `missing` holds "<unusedB>": a vocabulary with no
// token for those bytes, as SmolLM2's lacks 21.
ByteBpeVocab byte_vocab(std::initializer_list<int> missing = {}) {
  ByteBpeVocab v;
  v.tokens.resize(256);
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    const int cp = printable ? b : next++;
    v.tokens[b] = cp < 0x80 ? std::string(1, static_cast<char>(cp))
                            : std::string{static_cast<char>(0xC0 | (cp >> 6)), static_cast<char>(0x80 | (cp & 0x3F))};
  }
  for (int b : missing) v.tokens[b] = "<unused" + std::to_string(b) + ">";
  return v;
}

TEST(ByteBpe, NonSpecialAddedTokensAreMatchedAndDecodedAsText) {
  ByteBpeVocab v = byte_vocab();
  v.tokens.push_back("  ");           // 256: a non-special added run of spaces, as GPT-NeoX has
  v.tokens.push_back("<|pad|>");      // 257: special
  v.added_ids = {256};
  v.special_ids = {257};
  auto tok = make_byte_bpe(v);
  EXPECT_EQ(tok->encode("a  b<|pad|>", false), (Ids{'a', 256, 'b', 257}));
  EXPECT_EQ(tok->decode(Ids{'a', 256, 'b', 257}), "a  b");
  EXPECT_TRUE(tok->is_special(257));
  EXPECT_FALSE(tok->is_special(256));
}

// Expected ids below are what Hugging Face `tokenizers` 0.23 gives for the same vocabularies (BPE
// with and without unk_token; pre-tokenizer ByteLevel alone or after Digits(individual_digits=true)).
TEST(ByteBpe, ByteWithoutATokenIsDroppedOrBecomesUnk) {
  ByteBpeVocab v = byte_vocab({0x04, 0xC3});
  v.tokens.push_back("<unk>");  // 256
  v.special_ids = {256};
  EXPECT_EQ(make_byte_bpe(v)->encode("a\x04" "b\u00e9\x04", false), (Ids{'a', 'b', 0xA9}));  // é is C3 A9
  EXPECT_EQ(make_byte_bpe(v)->encode("\x04", false), Ids{});
  v.unk = 256;
  EXPECT_EQ(make_byte_bpe(v)->encode("a\x04" "b\u00e9\x04", false), (Ids{'a', 256, 'b', 256, 0xA9, 256}));
  v.unk = 257;
  EXPECT_THROW(make_byte_bpe(v), Error);
}

TEST(Gpt2Pretokenizer, SplitDigitsIsolatesEveryNumberCharacter) {
  using V = std::vector<std::string_view>;
  EXPECT_EQ(split_digits("ab12 \u00b3x"), (V{"ab", "1", "2", " ", "\u00b3", "x"}));  // ³ is \p{N}
  EXPECT_EQ(split_digits("x\u0663y 7"), (V{"x", "\u0663", "y ", "7"}));             // Arabic-Indic 3
  EXPECT_EQ(split_digits("12"), (V{"1", "2"}));
  EXPECT_EQ(split_digits("no digits"), (V{"no digits"}));
  EXPECT_EQ(split_digits(""), V{});
}

// A vocabulary whose merges join digits, so that splitting them off first shows in the ids.
ByteBpeVocab digit_merge_vocab() {
  ByteBpeVocab v = byte_vocab();
  v.tokens.push_back("\u01201");  // 256: "Ġ1", a space then 1
  v.tokens.push_back("12");       // 257
  v.merges = {{"\u0120", "1"}, {"1", "2"}};
  return v;
}

TEST(ByteBpe, IndividualDigitsAreSplitOffBeforeTheGpt2Regex) {
  ByteBpeVocab v = digit_merge_vocab();
  EXPECT_EQ(make_byte_bpe(v)->encode(" 12 x12", false), (Ids{256, '2', ' ', 'x', 257}));
  v.individual_digits = true;
  const auto tok = make_byte_bpe(v);
  EXPECT_EQ(tok->encode(" 12 x12", false), (Ids{' ', '1', '2', ' ', 'x', '1', '2'}));
  EXPECT_EQ(tok->decode(tok->encode(" 12 x12", false)), " 12 x12");
}

// The same through tokenizer.json: SmolLM2's pre-tokenizer Sequence and a model unk_token.
TEST(ByteBpe, TokenizerJsonDigitsThenByteLevelWithUnk) {
  TempDir dir;
  ByteBpeVocab v = digit_merge_vocab();
  v.tokens[0x04] = "<unk>";
  nlohmann::json vocab, merges = nlohmann::json::array();
  for (size_t id = 0; id < v.tokens.size(); ++id) vocab[v.tokens[id]] = id;
  for (const auto& [a, b] : v.merges) merges.push_back(a + " " + b);
  const nlohmann::json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  auto write = [&](const nlohmann::json& pre, const nlohmann::json& unk) {
    const nlohmann::json j = {
        {"added_tokens", {{{"id", 4}, {"content", "<unk>"}, {"special", true}}}},
        {"pre_tokenizer", pre},
        {"decoder", {{"type", "ByteLevel"}}},
        {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}, {"unk_token", unk}}}};
    write_file(dir.path() / "tokenizer.json", j.dump());
  };
  const nlohmann::json digits = {{"type", "Digits"}, {"individual_digits", true}};
  write({{"type", "Sequence"}, {"pretokenizers", {digits, byte_level}}}, "<unk>");
  EXPECT_EQ(load_tokenizer(dir.path())->encode(" 12\x04", false), (Ids{' ', '1', '2', 4}));
  write(byte_level, nullptr);
  EXPECT_EQ(load_tokenizer(dir.path())->encode(" 12\x04", false), (Ids{256, '2'}));
  write({{"type", "Sequence"}, {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", false}}, byte_level}}},
        nullptr);
  EXPECT_THROW(load_tokenizer(dir.path()), Error);
  write({{"type", "Sequence"}, {"pretokenizers", {{{"type", "Punctuation"}}, byte_level}}}, nullptr);
  EXPECT_THROW(load_tokenizer(dir.path()), Error);
}

// ---- streaming

TEST(StreamDecoder, HoldsBackACharacterSplitOverTokens) {
  CASCADE_REQUIRE_SHARED(encoder, kGpt2Encoder);
  const auto tok = load_tokenizer(encoder.parent_path());
  const Ids ids = tok->encode("\U0001F600", false);  // F0 9F 98 80 over two tokens
  ASSERT_EQ(ids.size(), 2u);
  StreamDecoder s(*tok);
  EXPECT_EQ(s.push(ids[0]), "");
  EXPECT_EQ(s.push(ids[1]), "\U0001F600");
  EXPECT_EQ(s.push(ids[0]), "");
  EXPECT_EQ(s.flush(), "\xF0\x9F\x98");  // an unfinished character comes out as it is
}

TEST(StreamDecoder, ConcatenationEqualsDecode) {
  CASCADE_REQUIRE_SHARED(bin, kLlamaBin);
  const auto tok = load_tokenizer(bin);
  for (const auto& c : read_cases(test::data_dir() / "tokenizer/llama_hard.json")) {
    const Ids ids = tok->encode(c.text, true);  // starts with BOS: the first real token is next
    StreamDecoder s(*tok);
    std::string out;
    for (int32_t id : ids) {
      const std::string piece = s.push(id);
      for (size_t pos = 0; pos < piece.size(); pos += unicode::next_char(piece, pos).len)
        EXPECT_TRUE(unicode::next_char(piece, pos).valid) << "a partial character in " << c.text;
      out += piece;
    }
    out += s.flush();
    EXPECT_EQ(out, tok->decode(ids)) << c.text;
    EXPECT_EQ(out, c.text);
  }
}

// ---- bad input

TEST(TokenizerErrors, MissingFile) {
  EXPECT_THROW(load_tokenizer("/nonexistent/tokenizer.json"), Error);
  TempDir dir;
  EXPECT_THROW(load_tokenizer(dir.path()), Error);  // a directory with no tokenizer files
}

TEST(TokenizerErrors, MalformedJson) {
  TempDir dir;
  write_file(dir.path() / "tokenizer.json", R"({"model": {"type": "BPE", "vocab": )");
  try {
    load_tokenizer(dir.path());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.json"), std::string::npos) << e.what();
  }
  write_file(dir.path() / "tokenizer.json", R"({"model": {"type": "Unigram", "vocab": []}})");
  EXPECT_THROW(load_tokenizer(dir.path()), Error);
}

TEST(TokenizerErrors, TruncatedTokenizerBin) {
  CASCADE_REQUIRE_SHARED(bin, "models/stories260K/tok512.bin");
  TempDir dir;
  const std::string data = read_file(bin);
  write_file(dir.path() / "tok.bin", data.substr(0, data.size() - 3));  // cut inside the last piece
  try {
    load_tokenizer(dir.path() / "tok.bin");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
}

TEST(TokenizerErrors, IdOutsideTheVocabularyInDecode) {
  const auto tok = load_tokenizer(test::data_dir() / "models/neox");
  EXPECT_THROW(tok->decode(Ids{1, tok->vocab_size()}), Error);
  EXPECT_THROW(tok->decode(Ids{-1}), Error);
  const auto sp = make_sentencepiece_bpe(small_sp_vocab());
  EXPECT_THROW(sp->decode(Ids{3, 10}), Error);
  StreamDecoder s(*sp);
  EXPECT_THROW(s.push(99), Error);
}

}  // namespace
}  // namespace cascade
