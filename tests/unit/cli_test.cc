// The command line as a user meets it: each command's good path checked against Hugging Face values,
// and a table of bad inputs, each of which must give one clear message and exit code 2.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>

#include <nlohmann/json.hpp>

#include "cuda/runtime.h"
#include "io/npy.h"
#include "support/cli_runner.h"
#include "support/test_paths.h"

namespace cascade {
namespace {

namespace fs = std::filesystem;
using test::data_dir;
using test::run_cli;

fs::path scratch(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / "cascade_cli_test" / name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string model(const std::string& name) { return test::fixture_model(name); }

void write(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

// A copy of a fixture directory whose files a test then breaks.
fs::path fixture_copy(const std::string& name, const std::string& tag) {
  const fs::path d = scratch(tag);
  for (const auto& e : fs::directory_iterator(data_dir() / "models" / name)) fs::copy_file(e.path(), d / e.path().filename());
  return d;
}

// Rewrites a safetensors file's header (its JSON) in place, keeping the data.
void edit_safetensors_header(const fs::path& file, const std::function<void(nlohmann::json&)>& edit) {
  std::ifstream in(file, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  auto header = nlohmann::json::parse(bytes.substr(8, n));
  edit(header);
  const std::string h = header.dump();
  const uint64_t m = h.size();
  write(file, std::string(reinterpret_cast<const char*>(&m), 8) + h + bytes.substr(8 + n));
}

// A GGUF file with one metadata key and one tensor info whose dimensions are [cols, rows] (F32),
// followed by `data` bytes of tensor data.
std::string gguf_bytes(uint64_t cols, uint64_t rows, size_t data) {
  auto u32 = [](uint32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); };
  auto u64 = [](uint64_t v) { return std::string(reinterpret_cast<const char*>(&v), 8); };
  auto str = [&](const std::string& t) { return u64(t.size()) + t; };
  std::string b = "GGUF" + u32(3) + u64(1) + u64(1) + str("general.architecture") + u32(8) + str("llama");
  b += str("token_embd.weight") + u32(2) + u64(cols) + u64(rows) + u32(0) + u64(0);
  b.append((32 - b.size() % 32) % 32, '\0');
  return b + std::string(data, '\0');
}

TEST(Cli, LogitsMatchHuggingFace) {
  const fs::path d = scratch("logits");
  const auto r = run_cli("logits --model " + model("llama_gqa") + " --ids " + (data_dir() / "ref/llama_gqa/ids.npy").string() +
                         " --out " + (d / "l.npy").string());
  ASSERT_EQ(r.code, 0) << r.output;
  const auto got = read_npy(d / "l.npy").to_float32("got");
  const auto want = read_npy(data_dir() / "ref/llama_gqa/logits.npy").to_float32("want");
  ASSERT_EQ(got.size(), want.size());
  float scale = 0, worst = 0;
  for (size_t i = 0; i < got.size(); ++i) scale = std::max(scale, std::fabs(want[i]));
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(got[i] - want[i]));
  EXPECT_LE(worst, 1e-4f * scale + 1e-5f);
}

TEST(Cli, PerplexityMatchesHuggingFace) {
  for (const char* name : {"neox", "llama"}) {
    const auto refs = nlohmann::json::parse(std::ifstream(data_dir() / "ref" / name / "perplexity.json"));
    for (const auto& ref : refs) {
      const fs::path out = scratch(std::string("ppl_") + name) / "p.json";
      const auto r = run_cli("perplexity --quiet --model " + model(name) + " --text " +
                             test::sample_text() + " --ctx " + std::to_string(ref["ctx"].get<int>()) +
                             " --stride " + std::to_string(ref["stride"].get<int>()) + " --json " + out.string());
      ASSERT_EQ(r.code, 0) << r.output;
      const auto j = nlohmann::json::parse(std::ifstream(out));
      EXPECT_EQ(j["scored"].get<int64_t>(), ref["scored"].get<int64_t>()) << name;
      EXPECT_EQ(j["tokens"].get<int64_t>(), ref["tokens"].get<int64_t>()) << name;
      EXPECT_NEAR(j["ppl"].get<double>() / ref["ppl"].get<double>(), 1.0, 1e-4) << name << " ctx " << ref["ctx"];
    }
  }
}

// The report is rewritten after every window (so an interrupted run keeps its windows) through a
// temporary file renamed over it; a finished run says complete and leaves no temporary behind.
TEST(Cli, PerplexityJsonIsWrittenPerWindow) {
  const fs::path out = scratch("ppl_json") / "p.json";
  const auto r = run_cli("perplexity --quiet --model " + model("llama") + " --text " + test::sample_text() +
                         " --ctx 32 --max-windows 3 --json " + out.string());
  ASSERT_EQ(r.code, 0) << r.output;
  const auto j = nlohmann::json::parse(std::ifstream(out));
  EXPECT_TRUE(j["complete"].get<bool>());
  EXPECT_EQ(j["windows"].size(), 3u);
  EXPECT_FALSE(fs::exists(out.string() + ".partial"));
}

// Text that is not UTF-8 is read byte-wise: byte-level BPE has a token for every byte and
// sentencepiece falls back to byte pieces, so nothing is refused or lost (README, Hardening).
TEST(Cli, NonUtf8TextIsReadByteWise) {
  const fs::path d = scratch("nonutf8");
  std::string text;
  for (int i = 0; i < 20; ++i) text += "Hello \xff\xfe world \xc3( caf\xe9 \xe2\x82\n";
  write(d / "t.txt", text);
  for (const char* name : {"neox", "llama"}) {
    const auto r = run_cli("perplexity --quiet --model " + model(name) + " --text " + (d / "t.txt").string());
    EXPECT_EQ(r.code, 0) << name << ": " << r.output;
    EXPECT_NE(r.output.find("perplexity "), std::string::npos) << name << ": " << r.output;
  }
}

// `cascade inspect` puts GGUF metadata and a tokenizer's error message into JSON; bytes there that
// are not UTF-8 made nlohmann's dump() throw json::type_error, so inspect died with "terminate
// called" (found by the bad-input matrix). They are now shown as \xNN (src/core/utf8.h).
TEST(Cli, InspectShowsBytesThatAreNotUtf8) {
  const fs::path d = scratch("inspect_utf8");
  std::ifstream in(data_dir() / "gguf/tiny_llama_bpe.gguf", std::ios::binary);
  std::string g((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t name = g.find("tiny test llama");  // the value of general.name
  ASSERT_NE(name, std::string::npos);
  g[name] = '\xff';
  write(d / "meta.gguf", g);
  const fs::path t = fixture_copy("llama", "inspect_tok_utf8");
  write(t / "tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"\xc3(\": 0}}}");
  // JSON writes the backslash of \xNN as \\ (so the output holds \\xff).
  const std::vector<std::pair<std::string, std::string>> cases = {{(d / "meta.gguf").string(), "\\\\xffiny test llama"},
                                                                  {t.string(), "\\\\xc3("}};
  for (const auto& [m, shown] : cases) {
    for (const char* json : {"--json ", ""}) {
      const auto r = run_cli(std::string("inspect ") + json + "--model " + m);
      EXPECT_EQ(r.code, 0) << m << ": " << r.output;
      EXPECT_EQ(r.output.find("terminate called"), std::string::npos) << m;
      EXPECT_NE(r.output.find(shown), std::string::npos) << m << ": " << r.output;
    }
  }
}

TEST(Cli, GenerateIsGreedyAndStreamsText) {
  const auto a = run_cli("generate --model " + model("llama") + " --prompt 'First Citizen' --max-new-tokens 8");
  const auto b = run_cli("generate --model " + model("llama") + " --prompt 'First Citizen' --max-new-tokens 8");
  ASSERT_EQ(a.code, 0) << a.output;
  EXPECT_EQ(a.output.substr(0, a.output.find('[')), b.output.substr(0, b.output.find('[')));
  EXPECT_NE(a.output.find("generated 8 tokens"), std::string::npos) << a.output;
  const auto s = run_cli("generate --model " + model("neox") + " --prompt 'First' --max-new-tokens 5 --temperature 0.8 "
                         "--top-k 20 --top-p 0.9 --seed 3 --attention ada --tau 0.3");
  EXPECT_EQ(s.code, 0) << s.output;
}

// bench --json reports the work it timed: the prompt and generated counts it was given, whether the
// prefill computed every position's logits, and positive rates.
TEST(Cli, BenchReportsTheWorkItTimed) {
  for (const std::string flag : {"", " --all-logits"}) {
    const auto r = run_cli("bench --model " + model("llama") + " --prompt-tokens 24 --gen-tokens 3 --reps 2 --json" + flag);
    ASSERT_EQ(r.code, 0) << r.output;
    const auto j = nlohmann::json::parse(r.output);
    EXPECT_EQ(j["prompt_tokens"], 24);
    EXPECT_EQ(j["gen_tokens"], 3);
    EXPECT_EQ(j["reps"], 2);
    EXPECT_EQ(j["all_logits"], !flag.empty());
    EXPECT_GT(j["prefill_tok_s"].get<double>(), 0);
    EXPECT_GT(j["decode_tok_s"].get<double>(), 0);
    EXPECT_NEAR(j["prefill_s"].get<double>() * j["prefill_tok_s"].get<double>(), 24, 1e-9);
  }
}

// The binary names the commit it was built from, in place and after being carried elsewhere (a copy
// outside any git checkout: a report once named the checkout it ran in instead), and that commit is
// one of this repository's.
TEST(Cli, VersionNamesTheBuildCommitWhereverTheBinaryRuns) {
  const auto here = run_cli("--version");
  ASSERT_EQ(here.code, 0) << here.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_match(here.output, m, std::regex("cascade (unknown|(.*-g)?([0-9a-f]{7,40}))(-dirty)?\n")))
      << here.output;
  const fs::path dir = scratch("version");
  fs::copy_file(test::cli_path(), dir / "cascade");
  const auto there = test::run_command((dir / "cascade").string() + " --version");
  EXPECT_EQ(there.code, 0) << there.output;
  EXPECT_EQ(there.output, here.output);
  if (m[1] == "unknown") GTEST_SKIP() << "built outside a git checkout";
  const fs::path source = data_dir() / ".." / "..";
  const auto known = test::run_command("git -C '" + source.string() + "' cat-file -e " + m[3].str() + "^{commit}");
  EXPECT_EQ(known.code, 0) << m[3] << " is no commit of " << source << ": " << known.output;
}

TEST(Cli, InspectReportsArchitectureAndTensors) {
  const auto r = run_cli("inspect --json --model " + model("gptj"));
  ASSERT_EQ(r.code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["architecture"]["model_type"], "gptj");
  EXPECT_EQ(j["architecture"]["rotary"], "interleaved");
  EXPECT_EQ(j["tensor_dtypes"]["BF16"].get<int>(), int(j["tensors"].size()));
  EXPECT_GT(j["parameters"].get<int64_t>(), 100000);
}

// One row per bad input: the arguments, a fragment the message must contain; exit code 2.
struct BadCase {
  std::string name, args, message;
};

// The rest of the bad-input matrix (missing, empty, truncated, wrong magic, wrong dtype, wrong shape,
// huge dimension, text that is not UTF-8 where UTF-8 is required, empty text, context overflow, tau
// outside [0, 1), unknown options) over the commands the rows above do not reach. Text and prompts
// that are not UTF-8 are valid input (NonUtf8TextIsReadByteWise); JSON files must be UTF-8.
void add_matrix_rows(std::vector<BadCase>& c, const std::string& ids, const std::string& out) {
  const std::string llama = model("llama"), text = test::sample_text();
  const std::string stories = (test::bundled_model_dir() / "stories260K.bin").string();
  const fs::path d = scratch("matrix");
  // Missing: the model under every command, the text, the ids, the tokenizer, a required option.
  c.push_back({"missing model (generate)", "generate --model /nonexistent/gen --prompt hi", "/nonexistent/gen: no such file"});
  c.push_back({"missing model (perplexity)", "perplexity --model /nonexistent/ppl --text " + text, "/nonexistent/ppl: no such file"});
  c.push_back({"missing model (inspect)", "inspect --model /nonexistent/ins", "/nonexistent/ins: no such file"});
  c.push_back({"missing model (study)", "study --model /nonexistent/stu --text " + text + " --ctx 32 --out " + (d / "s").string(), "/nonexistent/stu: no such file"});
  c.push_back({"missing model (bench)", "bench --model /nonexistent/ben", "/nonexistent/ben: no such file"});
  c.push_back({"missing text (perplexity)", "perplexity --model " + llama + " --text /nonexistent/t.txt", "/nonexistent/t.txt: cannot open text file"});
  c.push_back({"missing text (study)", "study --model " + llama + " --text /nonexistent/t.txt --ctx 32 --out " + (d / "s").string(), "/nonexistent/t.txt: cannot open text file"});
  c.push_back({"missing ids", "logits --model " + llama + " --ids /nonexistent/ids.npy --out " + out, "/nonexistent/ids.npy: cannot open"});
  c.push_back({"missing tokenizer", "generate --model " + llama + " --tokenizer /nonexistent/tok.json --prompt hi", "/nonexistent/tok.json"});
  c.push_back({"missing required option", "logits --model " + llama + " --out " + out, "--ids is required"});
  c.push_back({"no command", "", "A subcommand is required"});
  // Empty: a model file, the ids, the text under study, a prompt with no BOS to fall back on.
  write(d / "empty.bin", "");
  write(d / "empty.gguf", "");
  write(d / "empty.npy", "");
  write(d / "empty.txt", "");
  c.push_back({"empty llama2.c model", "inspect --model " + (d / "empty.bin").string(), "empty.bin: file is empty"});
  c.push_back({"empty gguf model", "generate --model " + (d / "empty.gguf").string() + " --prompt hi", "empty.gguf: file is empty"});
  {
    const fs::path m = fixture_copy("llama", "emptyweights");
    write(m / "model.safetensors", "");
    c.push_back({"empty safetensors", "inspect --model " + m.string(), "model.safetensors: file is empty"});
    const fs::path n = fixture_copy("llama", "emptyconfig");
    write(n / "config.json", "");
    c.push_back({"empty config.json", "inspect --model " + n.string(), "config.json: malformed JSON"});
  }
  c.push_back({"empty ids file", "logits --model " + llama + " --ids " + (d / "empty.npy").string() + " --out " + out, "bad magic"});
  const int32_t none[1] = {0};
  write_npy_i32(d / "noids.npy", {0}, none);
  c.push_back({"no ids", "logits --model " + llama + " --ids " + (d / "noids.npy").string() + " --out " + out, "no token ids"});
  c.push_back({"empty text (study)", "study --model " + llama + " --text " + (d / "empty.txt").string() + " --ctx 32 --out " + (d / "s").string(), "the text file is empty"});
  c.push_back({"empty prompt, no BOS", "generate --model " + model("neox") + " --prompt ''", "the prompt is empty"});
  // Truncated: a llama2.c checkpoint, a GGUF file (tensor data), the ids.
  {
    std::ifstream in(stories, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    write(d / "trunc.bin", bytes.substr(0, 100000));
    c.push_back({"truncated llama2.c model", "generate --model " + (d / "trunc.bin").string() + " --prompt hi", "implies 1056540 bytes, but the file has 100000"});
    write(d / "trunc.gguf", gguf_bytes(4, 4, 32));  // 64 bytes of tensor data claimed, 32 present
    c.push_back({"truncated gguf", "inspect --model " + (d / "trunc.gguf").string(), "extends beyond the end of the file"});
    std::ifstream good(ids, std::ios::binary);
    write(d / "trunc.npy", std::string((std::istreambuf_iterator<char>(good)), std::istreambuf_iterator<char>()).substr(0, 100));
    c.push_back({"truncated ids", "logits --model " + llama + " --ids " + (d / "trunc.npy").string() + " --out " + out, "truncated .npy"});
  }
  // Wrong magic: a text file given as the model.
  c.push_back({"model that is no known format", "inspect --model " + text, "unsupported model format"});
  // Wrong dtype: safetensors tensors of an unknown and of an integer dtype, ids of strings.
  {
    const fs::path m = fixture_copy("llama", "dtypeq9");
    edit_safetensors_header(m / "model.safetensors", [](nlohmann::json& h) { h["model.norm.weight"]["dtype"] = "Q9"; });
    c.push_back({"safetensors dtype unknown", "generate --model " + m.string() + " --prompt hi", "unknown dtype 'Q9'"});
    const fs::path n = fixture_copy("llama", "dtypei32");
    edit_safetensors_header(n / "model.safetensors", [](nlohmann::json& h) { h["model.norm.weight"]["dtype"] = "I32"; });
    c.push_back({"safetensors integer weights", "perplexity --model " + n.string() + " --text " + text, "cannot be loaded as float32"});
  }
  {
    std::string h = "{'descr': '<U2', 'fortran_order': False, 'shape': (2,), }";
    h.append((64 - (10 + h.size() + 1) % 64) % 64, ' ');
    h += '\n';
    write(d / "str.npy", std::string("\x93NUMPY\x01\x00", 8) + char(h.size()) + char(h.size() >> 8) + h + std::string(16, 'a'));
    c.push_back({"ids of strings", "logits --model " + llama + " --ids " + (d / "str.npy").string() + " --out " + out, "expected an integer .npy array, got dtype '<U2'"});
  }
  // Wrong shape: a tensor whose shape disagrees with its data_offsets.
  {
    const fs::path m = fixture_copy("llama", "offsets");
    edit_safetensors_header(m / "model.safetensors", [](nlohmann::json& h) { h["model.norm.weight"]["shape"] = {2}; });
    c.push_back({"safetensors shape and offsets disagree", "inspect --model " + m.string(), "needs 8 bytes but its data_offsets give"});
  }
  // Huge dimensions: 2^40 ids in a 16-byte payload; a llama2.c header of 2^20-wide layers; a
  // config.json hidden size of 2^40. None may allocate.
  {
    std::string h = "{'descr': '<i4', 'fortran_order': False, 'shape': (1099511627776,), }";
    h.append((64 - (10 + h.size() + 1) % 64) % 64, ' ');
    h += '\n';
    write(d / "huge.npy", std::string("\x93NUMPY\x01\x00", 8) + char(h.size()) + char(h.size() >> 8) + h + std::string(16, '\0'));
    c.push_back({"ids of 2^40 elements", "logits --model " + llama + " --ids " + (d / "huge.npy").string() + " --out " + out, "truncated .npy data"});
    const int32_t header[7] = {1 << 20, 1 << 22, 32, 32, 32, 1 << 20, 1 << 20};
    write(d / "huge.bin", std::string(reinterpret_cast<const char*>(header), sizeof header) + std::string(1024, '\0'));
    c.push_back({"llama2.c header of 2^20-wide layers", "inspect --model " + (d / "huge.bin").string(), "but the file has 1052"});
    const fs::path m = fixture_copy("llama", "hugeconfig");
    auto j = nlohmann::json::parse(std::ifstream(data_dir() / "models/llama/config.json"));
    j["hidden_size"] = int64_t(1) << 40;
    write(m / "config.json", j.dump());
    c.push_back({"config.json hidden size of 2^40", "generate --model " + m.string() + " --prompt hi", "out of range"});
  }
  // Not UTF-8 where UTF-8 is required: config.json, tokenizer.json, a GGUF tensor name.
  {
    const fs::path m = fixture_copy("llama", "cfgnotutf8");
    write(m / "config.json", "{\"model_type\": \"ll\xff\xfe" "ama\"}");
    c.push_back({"config.json not UTF-8", "inspect --model " + m.string(), "ill-formed UTF-8"});
    const fs::path t = fixture_copy("llama", "toknotutf8");
    write(t / "tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"\xc3(\": 0}}}");
    c.push_back({"tokenizer.json not UTF-8", "generate --model " + t.string() + " --prompt hi", "ill-formed UTF-8"});
    std::string g = gguf_bytes(4, 4, 64);
    g[g.find("token_embd")] = '\xff';
    write(d / "name.gguf", g);
    c.push_back({"gguf tensor name not UTF-8", "inspect --json --model " + (d / "name.gguf").string(), "name '\\xffoken_embd.weight' is not valid UTF-8"});
  }
  // Context overflow under logits, study and bench.
  {
    std::vector<int32_t> many(200, 5);
    write_npy_i32(d / "long.npy", {200}, many.data());
    c.push_back({"ids longer than the context", "logits --model " + llama + " --ids " + (d / "long.npy").string() + " --out " + out, "longer than the model's context of 128"});
    c.push_back({"study ctx beyond the model", "study --model " + llama + " --text " + text + " --ctx 4096 --out " + (d / "s").string(), "--ctx 4096 is longer than the model's context of 128"});
    c.push_back({"bench beyond the context", "bench --model " + llama + " --prompt-tokens 100 --gen-tokens 100", "exceeds the model's context of 128"});
  }
  // tau outside [0, 1) under every command that takes it.
  c.push_back({"negative tau (generate)", "generate --model " + llama + " --prompt hi --attention ada --tau -0.1", "tau must be in [0, 1)"});
  c.push_back({"tau > 1 (perplexity)", "perplexity --model " + llama + " --text " + text + " --attention ada --tau 1.5", "tau must be in [0, 1)"});
  c.push_back({"tau = nan (logits)", "logits --model " + llama + " --ids " + ids + " --out " + out + " --attention ada --tau nan", "tau must be in [0, 1), got nan"});
  c.push_back({"tau > 1 (bench)", "bench --model " + llama + " --attention ada --tau 2", "tau must be in [0, 1)"});
  c.push_back({"tau > 1 (study)", "study --model " + llama + " --text " + text + " --ctx 32 --tau 1.5 --out " + (d / "s").string(), "tau must be in [0, 1), got 1.5"});
  c.push_back({"tau sweep past 1 (study)", "study --model " + llama + " --text " + text + " --ctx 32 --tau-sweep 0,1 --out " + (d / "s").string(), "tau must be in [0, 1), got 1"});
  // Unknown options and values under every command.
  c.push_back({"unknown option (generate)", "generate --model " + llama + " --prompt hi --frobnicate", "frobnicate"});
  c.push_back({"unknown option (perplexity)", "perplexity --model " + llama + " --text " + text + " --frobnicate", "frobnicate"});
  c.push_back({"unknown option (inspect)", "inspect --model " + llama + " --frobnicate", "frobnicate"});
  c.push_back({"unknown option (study)", "study --model " + llama + " --text " + text + " --ctx 32 --out " + (d / "s").string() + " --frobnicate", "frobnicate"});
  c.push_back({"unknown option (bench)", "bench --model " + llama + " --frobnicate", "frobnicate"});
  c.push_back({"unknown command", "frobnicate --model " + llama, "unknown command 'frobnicate'"});
  c.push_back({"unknown attention", "generate --model " + llama + " --prompt hi --attention sparse", "sparse not in {full,ada,ada-kv,streaming,snapkv,tova,h2o,knorm,random,expected-attention}"});
  // The KV compression methods' budget: absent, outside (0, 1], not a number, on another method;
  // a context shorter than snapkv's window.
  c.push_back({"compression without --kv-budget", "generate --model " + llama + " --prompt hi --attention snapkv",
               "--attention snapkv needs --kv-budget F"});
  c.push_back({"--kv-budget 0", "perplexity --model " + llama + " --text " + text + " --attention streaming --kv-budget 0",
               "--kv-budget must be in (0, 1], got 0"});
  c.push_back({"--kv-budget 1.5", "logits --model " + llama + " --ids " + ids + " --out " + out + " --attention h2o --kv-budget 1.5",
               "--kv-budget must be in (0, 1], got 1.5"});
  c.push_back({"--kv-budget nan", "generate --model " + llama + " --prompt hi --attention tova --kv-budget nan",
               "--kv-budget must be in (0, 1], got nan"});
  c.push_back({"--kv-budget of text", "bench --model " + llama + " --attention knorm --kv-budget half", "--kv-budget: 'half' is not a number"});
  c.push_back({"--kv-budget with exact attention", "generate --model " + llama + " --prompt hi --kv-budget 0.5",
               "--kv-budget is for the KV compression methods"});
  c.push_back({"--kv-seed negative", "generate --model " + llama + " --prompt hi --attention random --kv-budget 0.5 --kv-seed -3",
               "--kv-seed: '-3' is not an unsigned integer"});
  // SPEC 6's variants: counts that are not, and the combinations ADA refuses.
  c.push_back({"--ada-sinks negative", "generate --model " + llama + " --prompt hi --attention ada --ada-queries all --ada-sinks -1",
               "--ada-sinks: '-1' is not an unsigned integer"});
  c.push_back({"--ada-window not an integer", "generate --model " + llama + " --prompt hi --attention ada --ada-queries all --ada-window 3.5",
               "--ada-window: '3.5' is not an unsigned integer"});
  c.push_back({"--ada-reconstruct unknown", "generate --model " + llama + " --prompt hi --attention ada --ada-reconstruct mean",
               "--ada-reconstruct: mean not in {copy,lstsq}"});
  c.push_back({"lstsq with all queries", "generate --model " + llama + " --prompt hi --attention ada --ada-queries all --ada-reconstruct lstsq",
               "--ada-reconstruct lstsq is for --ada-queries reps"});
  c.push_back({"window with reps queries", "generate --model " + llama + " --prompt hi --attention ada --ada-window 8",
               "--ada-sinks and --ada-window are for --ada-queries all"});
  c.push_back({"snapkv context within its window", "generate --model " + llama + " --prompt hi --attention snapkv --kv-budget 0.5",
               "needs a context longer than its observation window of 64 tokens"});
  c.push_back({"expected-attention context within its sinks",
               "generate --model " + llama + " --prompt hi --attention expected-attention --kv-budget 0.5",
               "expected-attention needs a context longer than its 4 sink tokens"});
  // SPEC 6's variants: features, dense layers, the span rule, ada-kv and its sinks and window.
  c.push_back({"unknown --ada-features", "generate --model " + llama + " --prompt hi --attention ada --ada-features values",
               "--ada-features: values not in {hidden,keys}"});
  c.push_back({"negative --ada-dense-layers", "generate --model " + llama + " --prompt hi --attention ada --ada-dense-layers -1",
               "--ada-dense-layers: '-1' is not an unsigned integer"});
  c.push_back({"--ada-dense-layers of text", "logits --model " + llama + " --ids " + ids + " --out " + out + " --attention ada-kv --ada-dense-layers two",
               "--ada-dense-layers: 'two' is not an unsigned integer"});
  c.push_back({"unknown --rule", "generate --model " + llama + " --prompt hi --attention ada --rule spam",
               "unknown selection rule 'spam' (expected greedy, all-earlier or span)"});
  c.push_back({"ada-kv with all-earlier and the cascade", "generate --model " + llama + " --prompt hi --attention ada-kv --rule all-earlier",
               "--rule all-earlier works with --select full, inherit or random"});
  c.push_back({"ada-kv with --proportional", "generate --model " + llama + " --prompt hi --attention ada-kv --proportional",
               "--ada-queries, --proportional and --ada-reconstruct are for --attention ada"});
  c.push_back({"ada-kv with --ada-queries all", "generate --model " + llama + " --prompt hi --attention ada-kv --ada-queries all",
               "--ada-queries, --proportional and --ada-reconstruct are for --attention ada"});
  c.push_back({"ada-kv with --ada-reconstruct lstsq", "generate --model " + llama + " --prompt hi --attention ada-kv --ada-reconstruct lstsq",
               "--ada-queries, --proportional and --ada-reconstruct are for --attention ada"});
  c.push_back({"ada-kv with --kv-budget", "generate --model " + llama + " --prompt hi --attention ada-kv --kv-budget 0.5",
               "--kv-budget is for the KV compression methods"});
  c.push_back({"--ada-sinks with exact attention", "generate --model " + llama + " --prompt hi --ada-sinks 4",
               "--ada-sinks and --ada-window are for --attention ada (all queries) and ada-kv"});
  c.push_back({"--ada-window of text", "bench --model " + llama + " --attention ada-kv --ada-window wide", "--ada-window: 'wide' is not an unsigned integer"});
  c.push_back({"unknown similarity", "study --model " + llama + " --text " + text + " --ctx 32 --similarity dot --out " + (d / "s").string(), "unknown similarity 'dot'"});
  c.push_back({"non-numeric ctx", "perplexity --model " + llama + " --text " + text + " --ctx many", "Could not convert: --ctx = many"});
}

std::vector<BadCase> bad_cases() {
  const std::string ids = (data_dir() / "ref/llama/ids.npy").string();
  const std::string out = (fs::temp_directory_path() / "cascade_cli_test_out.npy").string();
  std::vector<BadCase> c;
  c.push_back({"missing model", "logits --model /nonexistent/model --ids " + ids + " --out " + out, "/nonexistent/model"});
  {
    const fs::path d = fixture_copy("llama", "badjson");
    write(d / "config.json", "{\"model_type\": \"llama\", ");
    c.push_back({"malformed config.json", "logits --model " + d.string() + " --ids " + ids + " --out " + out, "config.json"});
  }
  {
    const fs::path d = fixture_copy("llama", "unknownarch");
    write(d / "config.json", "{\"model_type\": \"mamba\"}");
    c.push_back({"unknown architecture", "logits --model " + d.string() + " --ids " + ids + " --out " + out, "mamba"});
  }
  {
    const fs::path d = fixture_copy("llama", "badrope");
    auto j = nlohmann::json::parse(std::ifstream(data_dir() / "models/llama/config.json"));
    j["rope_parameters"] = {{"rope_type", "yarn"}, {"factor", 4.0}, {"rope_theta", 10000.0}};
    write(d / "config.json", j.dump());
    c.push_back({"unsupported config option", "logits --model " + d.string() + " --ids " + ids + " --out " + out, "yarn"});
  }
  {
    const fs::path d = fixture_copy("llama", "wrongshape");
    auto j = nlohmann::json::parse(std::ifstream(data_dir() / "models/llama/config.json"));
    j["intermediate_size"] = 100;
    write(d / "config.json", j.dump());
    c.push_back({"tensor of wrong shape", "logits --model " + d.string() + " --ids " + ids + " --out " + out, "expected"});
  }
  {
    const fs::path d = fixture_copy("llama", "truncated");
    fs::resize_file(d / "model.safetensors", fs::file_size(d / "model.safetensors") / 2);
    c.push_back({"truncated safetensors", "logits --model " + d.string() + " --ids " + ids + " --out " + out, "model.safetensors"});
  }
  {
    const fs::path d = fixture_copy("llama", "liar");
    std::fstream f(d / "model.safetensors", std::ios::in | std::ios::out | std::ios::binary);
    const uint64_t huge = uint64_t(1) << 40;
    f.write(reinterpret_cast<const char*>(&huge), 8);  // a header length far beyond the file
    c.push_back({"safetensors header that lies", "logits --model " + d.string() + " --ids " + ids + " --out " + out, "model.safetensors"});
  }
  {
    // 2^40 elements in a tensor whose data is 256 bytes: refused from the header, nothing allocated.
    const fs::path d = fixture_copy("llama", "hugedim");
    edit_safetensors_header(d / "model.safetensors", [](nlohmann::json& h) { h["model.norm.weight"]["shape"] = {int64_t(1) << 40}; });
    c.push_back({"safetensors shape of 2^40 elements", "logits --model " + d.string() + " --ids " + ids + " --out " + out, "[1099511627776]"});
  }
  {
    const fs::path d = scratch("gguf");
    write(d / "magic.gguf", "GGML" + gguf_bytes(4, 4, 64).substr(4));
    c.push_back({"gguf of wrong magic", "logits --model " + (d / "magic.gguf").string() + " --ids " + ids + " --out " + out, "not a GGUF file"});
    write(d / "huge.gguf", gguf_bytes(4096, uint64_t(1) << 40, 64));  // 2^54 bytes claimed, 64 present
    c.push_back({"gguf dimension of 2^40", "logits --model " + (d / "huge.gguf").string() + " --ids " + ids + " --out " + out, "extends beyond the end of the file"});
  }
  {
    const fs::path d = scratch("badids");
    const int32_t v[3] = {1, 5000, 2};
    write_npy_i32(d / "ids.npy", {3}, v);
    c.push_back({"id outside the vocabulary", "logits --model " + model("llama") + " --ids " + (d / "ids.npy").string() + " --out " + out, "outside the vocabulary"});
    write(d / "notnpy.npy", "hello");
    c.push_back({"ids file not .npy", "logits --model " + model("llama") + " --ids " + (d / "notnpy.npy").string() + " --out " + out, "notnpy.npy"});
    std::ifstream good(ids, std::ios::binary);
    write(d / "magic.npy", "\x93NUMPX" + std::string((std::istreambuf_iterator<char>(good)), std::istreambuf_iterator<char>()).substr(6));
    c.push_back({".npy of wrong magic", "logits --model " + model("llama") + " --ids " + (d / "magic.npy").string() + " --out " + out, "bad magic"});
    const float f[3] = {1, 5, 2};
    write_npy_f32(d / "float.npy", {3}, f);
    c.push_back({"float ids", "logits --model " + model("llama") + " --ids " + (d / "float.npy").string() + " --out " + out, "expected an integer .npy array"});
    const int32_t two[6] = {1, 5, 2, 1, 5, 2};
    write_npy_i32(d / "two.npy", {2, 3}, two);
    c.push_back({"ids of shape [2, T]", "logits --model " + model("llama") + " --ids " + (d / "two.npy").string() + " --out " + out, "shape [T] or [1, T]"});
  }
  {
    const fs::path d = scratch("longprompt");
    std::string big;
    for (int i = 0; i < 300; ++i) big += "word ";
    c.push_back({"prompt longer than the context", "generate --model " + model("llama") + " --prompt '" + big + "'", "longer than the model's context"});
    write(d / "empty.txt", "");
    c.push_back({"empty text", "perplexity --model " + model("llama") + " --text " + (d / "empty.txt").string(), "empty"});
    // Device flags (GPU engine): a 16-bit dtype on the CPU, an unknown device or dtype, an ADA mode the GPU lacks,
    // and --device cuda where there is no GPU (or no CUDA in the build).
    const std::string lg = "logits --model " + model("llama") + " --ids " + ids + " --out " + out;
    c.push_back({"--dtype bf16 on the cpu", lg + " --dtype bf16", "computes in f32 only"});
    c.push_back({"unknown --device", lg + " --device gpu", "--device"});
    c.push_back({"unknown --dtype", lg + " --device cuda --dtype f8", "not a compute dtype"});
    c.push_back({"unknown --cuda-graphs", lg + " --device cuda --cuda-graphs maybe", "--cuda-graphs"});
    c.push_back({"unknown --attention-kernel", lg + " --device cuda --attention-kernel flash", "--attention-kernel: flash not in"});
    c.push_back({"--attention-kernel cudnn on the cpu", lg + " --attention-kernel cudnn", "runs on the GPU (--device cuda)"});
    c.push_back({"unknown --ada-queries", lg + " --attention ada --ada-queries some", "--ada-queries"});
    c.push_back({"ADA --select inherit on cuda", "generate --model " + model("llama") + " --prompt hi --device cuda --attention ada --select inherit", "not yet on the GPU"});
    if (!cuda::gpu_available()) {
      c.push_back({"--device cuda without a GPU", "bench --model " + model("llama") + " --device cuda", "--device cuda: "});
      c.push_back({"KV compression on --device cuda without a GPU",
                   "generate --model " + model("llama") + " --prompt hi --device cuda --attention knorm --kv-budget 0.5",
                   "--device cuda: "});
    }
  }
  c.push_back({"ctx beyond the model", "perplexity --model " + model("llama") + " --text " + test::sample_text() + " --ctx 4096", "context"});
  c.push_back({"tau outside [0, 1)", "logits --model " + model("llama") + " --ids " + ids + " --out " + out + " --attention ada --tau 1.5", "tau"});
  c.push_back({"tau = 1 exactly", "logits --model " + model("llama") + " --ids " + ids + " --out " + out + " --attention ada --tau 1", "tau must be in [0, 1)"});
  c.push_back({"negative ctx", "perplexity --model " + model("llama") + " --text " + test::sample_text() + " --ctx -5", "--ctx must be at least 2"});
  c.push_back({"unwritable perplexity --json", "perplexity --model " + model("llama") + " --text " + test::sample_text() + " --json /nonexistent/dir/p.json", "cannot open for writing"});
  const std::string study = "study --model " + model("llama") + " --text " + test::sample_text() + " --ctx 64";
  c.push_back({"study without --out", study, "--out is required"});
  c.push_back({"study with unwritable --out", study + " --out /dev/null/study", "/dev/null/study"});
  c.push_back({"malformed select", "logits --model " + model("llama") + " --ids " + ids + " --out " + out + " --attention ada --select capped:x", "capped"});
  c.push_back({"unknown option", "logits --model " + model("llama") + " --ids " + ids + " --out " + out + " --frobnicate", "frobnicate"});
  c.push_back({"no tokenizer", "generate --model " + model("opt") + " --prompt hi", "tokenizer"});
  c.push_back({"bad sampling option", "generate --model " + model("llama") + " --prompt hi --top-p 0", "top-p"});
  add_matrix_rows(c, ids, out);
  return c;
}

TEST(Cli, BadInputGivesOneClearMessageAndExitCode2) {
  for (const auto& c : bad_cases()) {
    const auto r = run_cli(c.args);
    EXPECT_EQ(r.code, 2) << c.name << ": " << r.output;
    EXPECT_NE(r.output.find(c.message), std::string::npos) << c.name << ": message was: " << r.output;
    EXPECT_EQ(r.output.find("terminate called"), std::string::npos) << c.name;
  }
}

}  // namespace
}  // namespace cascade
