// The engine layer shared by the CLI and Python (src/engine/): the attention option table (names,
// defaults, validation and messages), the generate loop's stops (end-of-sequence token unless
// ignore_eos, max_new_tokens, cancel) on the bundled stories260K, and that the CLI's generate prints
// exactly what the engine's loop makes.
#include <gtest/gtest.h>

#include <set>

#include "attention/kv_press.h"
#include "core/error.h"
#include "engine/attention_options.h"
#include "engine/generate.h"
#include "model/model_tokenizer.h"
#include "support/cli_runner.h"
#include "support/test_paths.h"

namespace cascade {
namespace {

using engine::AttentionOptions;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(AttentionOptionTable, NamesAndFlagsAreUniqueAndDefaultsReadBack) {
  std::set<std::string> names, flags;
  const AttentionOptions defaults;
  for (const auto& spec : engine::attention_option_specs()) {
    EXPECT_TRUE(names.insert(spec.name).second) << spec.name;
    EXPECT_TRUE(flags.insert(spec.flag).second) << spec.flag;
    EXPECT_EQ(engine::find_attention_option(spec.name), &spec);
    // Setting an option to its default's text changes nothing.
    AttentionOptions o;
    const std::string text = engine::attention_option_text(defaults, spec.name);
    if (!text.empty()) engine::set_attention_option(o, spec.name, text, spec.flag);
    EXPECT_EQ(engine::attention_option_text(o, spec.name), text) << spec.name;
  }
  EXPECT_EQ(names, (std::set<std::string>{"attention", "kv_budget", "kv_seed", "select", "tau", "rule", "similarity",
                                          "queries", "proportional", "reconstruct", "sinks", "window", "device", "dtype",
                                          "cuda_graphs", "attention_kernel", "gram_precision", "features", "dense_layers"}));
  EXPECT_EQ(engine::find_attention_option("features")->flag, "--ada-features");
  EXPECT_EQ(engine::find_attention_option("dense_layers")->flag, "--ada-dense-layers");
  EXPECT_EQ(engine::attention_option_text(defaults, "tau"), "0.3");
  EXPECT_EQ(engine::find_attention_option("queries")->flag, "--ada-queries");
  EXPECT_TRUE(engine::find_attention_option("device")->placement);
  EXPECT_TRUE(engine::find_attention_option("attention_kernel")->placement);
  EXPECT_FALSE(engine::find_attention_option("tau")->placement);
}

TEST(AttentionOptionTable, ValuesBecomeAdaOptions) {
  AttentionOptions o;
  for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"attention", "ada"}, {"select", "inherit"}, {"tau", "0.5"}, {"rule", "all-earlier"},
           {"similarity", "cosine"}, {"queries", "all"}, {"proportional", "true"}})
    engine::set_attention_option(o, name, value, name);
  const AdaOptions a = engine::ada_options(o);
  EXPECT_EQ(a.select.tau, 0.5);
  EXPECT_EQ(a.select.rule, select::Rule::all_earlier);
  EXPECT_EQ(a.select.similarity, select::Similarity::cosine);
  EXPECT_EQ(a.mode.mode, select::Mode::inherit);
  EXPECT_EQ(a.queries, AdaQueries::all);
  EXPECT_TRUE(a.proportional);
  EXPECT_TRUE(engine::make_attention(o));
  EXPECT_FALSE(engine::make_attention(AttentionOptions{}));  // exact attention
  // SPEC 6's variants, and ada-kv with its sinks and window (ADA's attention options refused there).
  for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"features", "keys"}, {"dense_layers", "2"}, {"rule", "span"}, {"select", "cascade"},
           {"attention", "ada-kv"}, {"sinks", "4"}, {"window", "16"}})
    engine::set_attention_option(o, name, value, name);
  EXPECT_NE(error_of([&] { engine::make_attention(o); }).find("are for --attention ada"), std::string::npos);
  engine::set_attention_option(o, "queries", "reps", "queries");
  engine::set_attention_option(o, "proportional", "false", "proportional");
  const KvPressOptions k = engine::ada_kv_options(o);
  ASSERT_TRUE(k.ada_kv.has_value());
  EXPECT_EQ(k.ada_kv->ada.features, AdaFeatures::keys);
  EXPECT_EQ(k.ada_kv->ada.dense_layers, 2);
  EXPECT_EQ(k.ada_kv->ada.select.rule, select::Rule::span);
  EXPECT_EQ(k.ada_kv->sinks, 4);
  EXPECT_EQ(k.ada_kv->window, 16);
  EXPECT_NE(dynamic_cast<KvPressFactory*>(engine::make_attention(o).get()), nullptr);
}

TEST(AttentionOptionTable, BadValuesNameTheOptionAsTheCallerSpellsIt) {
  const auto set = [](const std::string& name, const std::string& value, const std::string& label) {
    return error_of([&] {
      AttentionOptions o;
      engine::set_attention_option(o, name, value, label);
    });
  };
  EXPECT_EQ(set("attention", "sparse", "--attention"),
            "--attention: sparse not in {full,ada,ada-kv,streaming,snapkv,tova,h2o,knorm,random,expected-attention}");
  EXPECT_EQ(set("attention", "sparse", "attention"), "attention: sparse not in {full,ada,ada-kv,streaming,snapkv,tova,h2o,knorm,random,expected-attention}");
  EXPECT_EQ(set("kv_budget", "0", "--kv-budget"), "--kv-budget must be in (0, 1], got 0");
  EXPECT_EQ(set("kv_budget", "1.5", "kv_budget"), "kv_budget must be in (0, 1], got 1.5");
  EXPECT_EQ(set("kv_budget", "nan", "--kv-budget"), "--kv-budget must be in (0, 1], got nan");
  EXPECT_EQ(set("kv_seed", "-1", "--kv-seed"), "--kv-seed: '-1' is not an unsigned integer");
  EXPECT_EQ(set("queries", "some", "--ada-queries"), "--ada-queries: some not in {reps,all}");
  EXPECT_EQ(set("reconstruct", "mean", "--ada-reconstruct"), "--ada-reconstruct: mean not in {copy,lstsq}");
  EXPECT_EQ(set("sinks", "-3", "--ada-sinks"), "--ada-sinks: '-3' is not an unsigned integer");
  EXPECT_EQ(set("window", "2.5", "window"), "window: '2.5' is not an unsigned integer");
  EXPECT_EQ(set("window", "99999999999", "--ada-window"), "--ada-window: 99999999999 is too large");
  EXPECT_EQ(set("tau", "1.5", "--tau"), "selection tau must be in [0, 1), got 1.5");
  EXPECT_EQ(set("tau", "nan", "tau"), "selection tau must be in [0, 1), got nan");
  EXPECT_EQ(set("tau", "0.3x", "--tau"), "--tau: '0.3x' is not a number");
  EXPECT_EQ(set("proportional", "maybe", "proportional"), "proportional: 'maybe' is not true or false");
  EXPECT_NE(set("similarity", "dot", "similarity").find("unknown similarity 'dot'"), std::string::npos);
  EXPECT_NE(set("select", "capped:x", "select").find("capped"), std::string::npos);
  EXPECT_NE(set("dtype", "f8", "--dtype").find("not a compute dtype"), std::string::npos);
  EXPECT_EQ(set("no_such", "1", "no_such"), "unknown attention option 'no_such'");
}

// The compression methods need --kv-budget, which nothing else takes; their GPU twin is still missing.
TEST(AttentionOptionTable, KvBudgetGoesWithTheCompressionMethods) {
  AttentionOptions o;
  EXPECT_EQ(engine::attention_option_text(o, "kv_budget"), "");  // not given: no default
  engine::set_attention_option(o, "attention", "snapkv", "--attention");
  EXPECT_EQ(error_of([&] { engine::make_attention(o); }),
            "--attention snapkv needs --kv-budget F, the kept fraction of each layer's context entries, in (0, 1]");
  engine::set_attention_option(o, "kv_budget", "0.25", "--kv-budget");
  const auto f = engine::make_attention(o);
  ASSERT_TRUE(dynamic_cast<const KvPressFactory*>(f.get()));
  EXPECT_EQ(dynamic_cast<const KvPressFactory&>(*f).options().budget, 0.25);
  EXPECT_EQ(error_of([&] { f->check_gpu(); }), "");  // the GPU has every compression method
  engine::set_attention_option(o, "attention", "random", "--attention");
  engine::set_attention_option(o, "kv_seed", "7", "--kv-seed");
  EXPECT_EQ(dynamic_cast<const KvPressFactory&>(*engine::make_attention(o)).options().params.seed, 7u);
  engine::set_attention_option(o, "attention", "full", "--attention");
  EXPECT_NE(error_of([&] { engine::make_attention(o); }).find("--kv-budget is for the KV compression methods"),
            std::string::npos);
}

TEST(AttentionOptionTable, PlacementIsCheckedBeforeAnyModel) {
  AttentionOptions o;
  engine::set_attention_option(o, "dtype", "bf16", "--dtype");
  EXPECT_NE(error_of([&] { engine::make_attention(o); }).find("computes in f32 only"), std::string::npos);
}

// The GPU selection's Gram precision: a name of select::gpu's, refused where no GPU selection runs.
TEST(AttentionOptionTable, GramPrecisionIsTheGpuSelections) {
  AttentionOptions o;
  EXPECT_EQ(engine::ada_options(o).gram_precision, select::gpu::Precision::f16_certified);
  engine::set_attention_option(o, "attention", "ada", "--attention");
  EXPECT_TRUE(engine::make_attention(o));  // float64's decisions, as the CPU's selection makes
  engine::set_attention_option(o, "gram_precision", "f64", "--gram-precision");
  EXPECT_TRUE(engine::make_attention(o));
  engine::set_attention_option(o, "gram_precision", "tf32", "--gram-precision");
  EXPECT_EQ(engine::ada_options(o).gram_precision, select::gpu::Precision::tf32);
  EXPECT_EQ(error_of([&] { engine::make_attention(o); }),
            "--gram-precision tf32 is the GPU selection's: it needs --device cuda --attention ada");
  EXPECT_EQ(error_of([&] { engine::set_attention_option(o, "gram_precision", "f16", "--gram-precision"); }),
            "--gram-precision: f16 not in {f64,f16-certified,f32,tf32}");
  for (auto p : {select::gpu::Precision::f64, select::gpu::Precision::f32, select::gpu::Precision::tf32,
                 select::gpu::Precision::f16_certified})
    EXPECT_EQ(select::gpu::parse_precision(select::gpu::precision_name(p)), p);
  EXPECT_EQ(error_of([&] { select::gpu::parse_precision("bf16", "x"); }), "x: 'bf16' not in {f64,f32,tf32,f16-certified}");
}

// ---- the generate loop on stories260K

struct Stories : ::testing::Test {
  static void SetUpTestSuite() {
    path_ = (test::bundled_model_dir() / "stories260K.bin").string();
    model_ = Model::load(path_);
    tok_ = model_tokenizer(*model_, path_, "");
  }
  static void TearDownTestSuite() {
    tok_.reset();
    model_.reset();
  }
  static inline std::string path_;
  static inline std::unique_ptr<Model> model_;
  static inline std::shared_ptr<Tokenizer> tok_;
};

// stories260K's stories end by starting the next one (BOS), not with its EOS: this tokenizer is
// the model's own with another token named end-of-sequence, so that the loop meets it.
class EosIs : public Tokenizer {
 public:
  EosIs(const Tokenizer& t, int32_t eos) : t_(t), eos_(eos) {}
  std::vector<int32_t> encode(std::string_view text, bool add_special) const override { return t_.encode(text, add_special); }
  std::string decode(std::span<const int32_t> ids) const override { return t_.decode(ids); }
  std::string token_bytes(int32_t id, bool first) const override { return t_.token_bytes(id, first); }
  bool is_special(int32_t id) const override { return t_.is_special(id); }
  int32_t vocab_size() const override { return t_.vocab_size(); }
  std::optional<int32_t> bos_id() const override { return t_.bos_id(); }
  std::optional<int32_t> eos_id() const override { return eos_; }
  std::string kind() const override { return t_.kind(); }

 private:
  const Tokenizer& t_;
  int32_t eos_;
};

TEST_F(Stories, GenerateStopsAtEosUnlessIgnoreEos) {
  engine::GenerateOptions o;
  o.max_new_tokens = 24;
  const engine::Generation free = engine::generate(*model_, *tok_, nullptr, "Once upon a time", o);
  ASSERT_EQ(free.ids.size(), 24u);
  EXPECT_EQ(free.stop, engine::StopReason::max_new_tokens);
  EXPECT_EQ(free.text, tok_->decode(free.ids));

  // The 10th greedy token as end-of-sequence: the loop stops before its first occurrence...
  const int32_t eos = free.ids[9];
  const size_t first = size_t(std::find(free.ids.begin(), free.ids.end(), eos) - free.ids.begin());
  const EosIs tok(*tok_, eos);
  const engine::Generation stopped = engine::generate(*model_, tok, nullptr, "Once upon a time", o);
  EXPECT_EQ(stopped.stop, engine::StopReason::eos);
  EXPECT_EQ(stopped.ids, std::vector<int32_t>(free.ids.begin(), free.ids.begin() + long(first)));
  // ...and with ignore_eos makes every token, the same ones.
  o.ignore_eos = true;
  const engine::Generation ignored = engine::generate(*model_, tok, nullptr, "Once upon a time", o);
  EXPECT_EQ(ignored.stop, engine::StopReason::max_new_tokens);
  EXPECT_EQ(ignored.ids, free.ids);
}

TEST_F(Stories, GenerateStreamsItsTextAndStopsWhenCancelled) {
  engine::GenerateOptions o;
  o.max_new_tokens = 16;
  std::string streamed;
  int asked = 0;
  engine::GenerateHooks hooks{[&](const std::string& piece) { streamed += piece; }, [&] { return ++asked > 5; }};
  const engine::Generation g = engine::generate(*model_, *tok_, nullptr, "Once upon a time", o, hooks);
  EXPECT_EQ(g.stop, engine::StopReason::cancelled);
  EXPECT_EQ(g.ids.size(), 5u);
  EXPECT_EQ(streamed, g.text);
  EXPECT_EQ(g.prompt_tokens, int64_t(tok_->encode("Once upon a time", true).size()));
}

TEST_F(Stories, GenerateRefusesBadOptionsAndPrompts) {
  engine::GenerateOptions o;
  o.max_new_tokens = -1;
  EXPECT_NE(error_of([&] { engine::check_generate_options(o); }).find("max_new_tokens must be >= 0"), std::string::npos);
  o.max_new_tokens = 4;
  o.sampling.top_p = 0;
  EXPECT_NE(error_of([&] { engine::check_generate_options(o); }).find("top"), std::string::npos);
  o.sampling.top_p = 1;
  const std::string long_prompt(4000, 'a');
  EXPECT_NE(error_of([&] { engine::generate(*model_, *tok_, nullptr, long_prompt, o); }).find("longer than the model's context"),
            std::string::npos);
}

TEST_F(Stories, CliPrintsWhatTheEngineGenerates) {
  engine::GenerateOptions o;
  o.max_new_tokens = 20;
  o.sampling = {0.8, 40, 0.95, 7};
  AttentionOptions a;
  engine::set_attention_option(a, "attention", "ada", "attention");
  engine::set_attention_option(a, "tau", "0.3", "tau");
  const auto attention = engine::make_attention(a);
  const engine::Generation g = engine::generate(*model_, *tok_, attention.get(), "Once upon a time", o);
  const auto r = test::run_cli("generate --model " + path_ +
                               " --prompt 'Once upon a time' --max-new-tokens 20 --temperature 0.8 --top-k 40 --top-p 0.95"
                               " --seed 7 --attention ada --tau 0.3");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(r.output.substr(0, r.output.find("[prompt ")), g.text + "\n");  // then the timing line
}

}  // namespace
}  // namespace cascade
