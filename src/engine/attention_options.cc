#include "engine/attention_options.h"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "attention/kv_press.h"
#include "core/error.h"
#include "cuda/runtime.h"
#include "model/device_decoder.h"
#include "ops/attention_cudnn.h"

namespace cascade::engine {

namespace {

double parse_number(const std::string& value, const std::string& label) {
  errno = 0;
  char* end = nullptr;
  const double x = std::strtod(value.c_str(), &end);
  if (value.empty() || end != value.c_str() + value.size() || errno == ERANGE)
    fail(label, ": '", value, "' is not a number");
  return x;
}

bool parse_flag(const std::string& value, const std::string& label) {
  if (value == "true" || value == "1") return true;
  if (value == "false" || value == "0") return false;
  fail(label, ": '", value, "' is not true or false");
}

std::string joined(const std::vector<std::string>& choices) {
  std::string s;
  for (const auto& c : choices) s += (s.empty() ? "" : ",") + c;
  return s;
}

uint64_t parse_seed(const std::string& value, const std::string& label) {
  errno = 0;
  char* end = nullptr;
  const unsigned long long x = std::strtoull(value.c_str(), &end, 10);
  if (value.empty() || value[0] < '0' || value[0] > '9' || end != value.c_str() + value.size() || errno == ERANGE)
    fail(label, ": '", value, "' is not an unsigned integer");
  return x;
}

// A non-negative integer option (a layer or token count).
int64_t parse_count(const std::string& value, const std::string& label) {
  const uint64_t x = parse_seed(value, label);
  if (x > uint64_t(INT32_MAX)) fail(label, ": ", value, " is too large");
  return int64_t(x);
}

// What a value must satisfy beyond its kind; the messages are those of the parsers that read it later.
void check_value(const AttentionOptions& o, const std::string& name, const std::string& label) {
  if (name == "kv_budget" && !(o.kv_budget > 0 && o.kv_budget <= 1))
    fail(label, " must be in (0, 1], got ", o.kv_budget);
  if (name == "kv_seed") (void)parse_seed(o.kv_seed, label);
  if (name == "sinks") (void)parse_count(o.sinks, label);
  if (name == "window") (void)parse_count(o.window, label);
  if (name == "select") (void)select::parse_mode(o.select);
  if (name == "tau") (void)select::Options{.tau = o.tau}.theta();
  if (name == "rule") (void)select::parse_rule(o.rule);
  if (name == "similarity") (void)select::parse_similarity(o.similarity);
  if (name == "dense_layers") (void)parse_count(o.dense_layers, label);
  if (name == "dtype" && !o.dtype.empty()) (void)parse_compute_dtype(o.dtype);
}

DType dtype_of(const AttentionOptions& o) {
  if (o.dtype.empty()) return o.device == "cuda" ? DType::BF16 : DType::F32;
  return parse_compute_dtype(o.dtype);
}

void check_placement(const AttentionOptions& o) {
  const Device d = parse_device(o.device);
  if (d == Device::Cpu && dtype_of(o) != DType::F32)
    fail("--dtype ", o.dtype, ": the CPU engine computes in f32 only (fp16 and bf16 need --device cuda)");
  // f64 and f16-certified make float64's decisions, as the CPU's selection does; f32 and tf32 do not.
  const select::gpu::Precision gp = select::gpu::parse_precision(o.gram_precision, "--gram-precision");
  const bool gpu_only = gp == select::gpu::Precision::f32 || gp == select::gpu::Precision::tf32;
  if (gpu_only && (d != Device::Cuda || o.attention != "ada"))
    fail("--gram-precision ", o.gram_precision, " is the GPU selection's: it needs --device cuda --attention ada");
  if (d == Device::Cuda) {
    if (o.attention == "ada") AdaAttentionFactory(ada_options(o)).check_gpu();
    if (o.attention == "ada-kv") KvPressFactory(ada_kv_options(o)).check_gpu();
    cuda::require_gpu();
    std::string why;
    if (o.attention_kernel == "cudnn" && !ops::gpu::cudnn_sdpa::available(&why)) fail("--attention-kernel cudnn: ", why);
  } else if (o.attention_kernel == "cudnn") {
    fail("--attention-kernel cudnn: cuDNN's attention runs on the GPU (--device cuda)");
  }
}

// The KV compression methods' names joined by sep, as the help and the messages list them.
std::string press_methods_text(const std::string& sep) {
  std::string t;
  for (const auto& m : press::method_names()) t += (t.empty() ? "" : sep) + m;
  return t;
}

std::vector<std::string> attention_methods() {
  std::vector<std::string> m = {"full", "ada", "ada-kv"};
  m.insert(m.end(), press::method_names().begin(), press::method_names().end());
  return m;
}

}  // namespace

const std::vector<OptionSpec>& attention_option_specs() {
  using O = AttentionOptions;
  static const std::vector<OptionSpec> specs = {
      {"attention", "--attention", &O::attention, attention_methods(),
       "full (exact), ada (attention on representative tokens), or a KV compression method after an exact"
       " prefill of the context: ada-kv (each layer keeps the K/V of its ADA representatives, chosen as --select,"
       " --rule, --tau, --similarity, --ada-features, --ada-dense-layers say, plus --ada-sinks and --ada-window),"
       " or kvpress's " + press_methods_text(" | ")},
      {"kv_budget", "--kv-budget", &O::kv_budget, {},
       "With a KV compression method (required there, refused elsewhere): the kept fraction F of each"
       " layer's context entries, per KV head: round(F C) of C (halves up), F in (0, 1]"},
      {"kv_seed", "--kv-seed", &O::kv_seed, {}, "With --attention random: the seed of its draws, alike in every layer"},
      {"select", "--select", &O::select, {},
       "With ada: how layer l+1's set is chosen from layer l's: full | cascade (exact, same set as full) |"
       " inherit | capped:K | random[:SEED]"},
      {"rule", "--rule", &O::rule, {},
       "Selection rule: greedy (t redundant when its correlation with an earlier representative reaches"
       " 1 - tau^2) | all-earlier (with any earlier token; --select full, inherit or random) | span (when"
       " its projection on the span of the earlier representatives has squared norm >= 1 - tau^2)"},
      {"features", "--ada-features", &O::features, {"hidden", "keys"},
       "What ada and ada-kv select on: hidden (the layer's normalised input X_l) or keys (its keys after"
       " rotary, every KV head)"},
      {"dense_layers", "--ada-dense-layers", &O::dense_layers, {},
       "ada and ada-kv: layers 0..K-1 run exact attention, layer K the full selection, the cascade"
       " continues from it; K at or past the number of layers: exact everywhere"},
      {"tau", "--tau", &O::tau, {}, "Gram threshold; a token is redundant at correlation >= 1 - tau^2"},
      {"similarity", "--similarity", &O::similarity, {}, "pearson (centred) or cosine"},
      {"queries", "--ada-queries", &O::queries, {"reps", "all"}, "reps (r x r attention, others copy their parent) or all"},
      {"proportional", "--proportional", &O::proportional, {}, "Add log(n_s) to the logit of representative s"},
      {"reconstruct", "--ada-reconstruct", &O::reconstruct, {"copy", "lstsq"},
       "With --ada-queries reps: a non-representative copies its parent's output (copy), or takes the"
       " least-squares mix of the outputs of its (at most 8) most correlated earlier representatives (lstsq)"},
      {"sinks", "--ada-sinks", &O::sinks, {}, "With --ada-queries all: every query also sees keys 0..N-1 (N >= 0)"},
      {"window", "--ada-window", &O::window, {},
       "With --ada-queries all: every query t also sees keys t-W+1..t (W >= 0)"},
      {"device", "--device", &O::device, {"cpu", "cuda"},
       "cpu, or cuda (the GPU engine: exact attention, the KV compression methods ada-kv included, and ada with"
       " --select full|cascade, --rule greedy|span, --ada-features, --ada-dense-layers, --ada-queries reps|all,"
       " --proportional, --ada-reconstruct, --ada-sinks, --ada-window; needs a CUDA build and a GPU)",
       true},
      {"dtype", "--dtype", &O::dtype, {},
       "Compute dtype of weights and activations (float32 accumulation): f32 | fp16 | bf16;"
       " default f32 on cpu (its only dtype), bf16 on cuda",
       true},
      {"cuda_graphs", "--cuda-graphs", &O::cuda_graphs, {"on", "off"},
       "With --device cuda: replay each forward that repeats as a CUDA graph (on: exact attention's passes"
       " and decoding steps, ADA's one-token decoding steps), or launch every kernel (off: the attention"
       " kernels' device time is then measured)",
       true},
      {"attention_kernel", "--attention-kernel", &O::attention_kernel, {"auto", "cascade", "cudnn"},
       "With --device cuda: who runs the plain causal attention of 16 or more tokens (exact attention's"
       " prefill and chunks, the KV methods' context and the peers' continuation; fp16/bf16): auto (cuDNN's"
       " fused attention where libcudnn.so.9 loads, else Cascade's kernel), cascade (Cascade's kernel always),"
       " or cudnn (cuDNN's, an error where it cannot run). Decoding steps, ADA and ada-kv's kept caches always"
       " run Cascade's kernel",
       true},
      {"gram_precision", "--gram-precision", &O::gram_precision, {"f64", "f16-certified", "f32", "tf32"},
       "With --device cuda and --attention ada: the selection's Gram. f16-certified (fp16 tensor cores; every"
       " decision the fp16 value cannot certify is recomputed in float64: the same selection as f64, 2x to 9x"
       " faster at T >= 8192) or f64 (float64 DGEMM); f32 and tf32 (GPU only) may change decisions within"
       " ~1e-6 / ~1e-4 of theta"},
  };
  return specs;
}

const OptionSpec* find_attention_option(const std::string& name) {
  for (const OptionSpec& s : attention_option_specs())
    if (s.name == name) return &s;
  return nullptr;
}

void set_attention_option(AttentionOptions& o, const std::string& name, const std::string& value,
                          const std::string& label) {
  const OptionSpec* spec = find_attention_option(name);
  if (!spec) fail("unknown attention option '", name, "'");
  if (const auto* text = std::get_if<std::string AttentionOptions::*>(&spec->field)) {
    bool known = spec->choices.empty();
    for (const auto& c : spec->choices) known = known || c == value;
    if (!known) fail(label, ": ", value, " not in {", joined(spec->choices), "}");
    o.*(*text) = value;
  } else if (const auto* number = std::get_if<double AttentionOptions::*>(&spec->field)) {
    o.*(*number) = parse_number(value, label);
  } else {
    o.*std::get<bool AttentionOptions::*>(spec->field) = parse_flag(value, label);
  }
  check_value(o, name, label);
}

std::string attention_option_text(const AttentionOptions& o, const std::string& name) {
  const OptionSpec* spec = find_attention_option(name);
  if (!spec) fail("unknown attention option '", name, "'");
  if (const auto* text = std::get_if<std::string AttentionOptions::*>(&spec->field)) return o.*(*text);
  if (const auto* flag = std::get_if<bool AttentionOptions::*>(&spec->field)) return o.*(*flag) ? "true" : "false";
  // The shortest decimal that reads back as the same double (0.3, not 0.300000).
  char b[32];
  const double x = o.*std::get<double AttentionOptions::*>(spec->field);
  if (std::isnan(x)) return "";
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(b, sizeof b, "%.*g", digits, x);
    if (std::strtod(b, nullptr) == x) break;
  }
  return b;
}

AdaOptions ada_options(const AttentionOptions& o) {
  AdaOptions a;
  a.select.tau = o.tau;
  a.select.rule = select::parse_rule(o.rule);
  a.select.similarity = select::parse_similarity(o.similarity);
  a.mode = select::parse_mode(o.select);
  a.queries = o.queries == "all" ? AdaQueries::all : AdaQueries::reps;
  a.proportional = o.proportional;
  a.features = parse_ada_features(o.features);
  a.dense_layers = parse_count(o.dense_layers, "--ada-dense-layers");
  a.reconstruct = o.reconstruct == "lstsq" ? AdaReconstruct::lstsq : AdaReconstruct::copy;
  a.sinks = parse_count(o.sinks, "--ada-sinks");
  a.window = parse_count(o.window, "--ada-window");
  a.gram_precision = select::gpu::parse_precision(o.gram_precision, "--gram-precision");
  return a;
}

KvPressOptions ada_kv_options(const AttentionOptions& o) {
  KvPressOptions p;
  AdaOptions a = ada_options(o);
  p.ada_kv = AdaKvOptions{a, a.sinks, a.window};
  p.ada_kv->ada.sinks = p.ada_kv->ada.window = 0;  // ada-kv's own, not ADA attention's (queries all)
  return p;
}

std::unique_ptr<AttentionFactory> make_attention(const AttentionOptions& o, bool measured) {
  AdaOptions a = ada_options(o);
  a.measure_error = a.compare_full = measured;
  check_placement(o);
  KvPressOptions p;
  if (press::parse_method(o.attention, &p.method)) {
    if (std::isnan(o.kv_budget))
      fail("--attention ", o.attention, " needs --kv-budget F, the kept fraction of each layer's context entries, in (0, 1]");
    p.budget = o.kv_budget;
    p.params.seed = parse_seed(o.kv_seed, "--kv-seed");
    return std::make_unique<KvPressFactory>(p);
  }
  if (!std::isnan(o.kv_budget))
    fail("--kv-budget is for the KV compression methods (--attention ", press_methods_text("|"), "), not --attention ",
         o.attention);
  if ((parse_count(o.sinks, "--ada-sinks") > 0 || parse_count(o.window, "--ada-window") > 0) && o.attention != "ada-kv" &&
      o.attention != "ada")
    fail("--ada-sinks and --ada-window are for --attention ada (all queries) and ada-kv, not --attention ", o.attention);
  if (o.attention == "full") return nullptr;
  if (o.attention == "ada-kv") {
    // They shape ADA's compressed attention; ada-kv attends exactly over the entries it kept.
    if (o.queries != "reps" || o.proportional || o.reconstruct != "copy")
      fail("--ada-queries, --proportional and --ada-reconstruct are for --attention ada: ada-kv keeps the K/V of the "
           "representatives (with --ada-sinks, --ada-window) and every query attends exactly over them");
    return std::make_unique<KvPressFactory>(ada_kv_options(o));
  }
  return std::make_unique<AdaAttentionFactory>(a);
}

void place_model(Model& m, const AttentionOptions& o) {
  check_placement(o);
  const Device d = parse_device(o.device);
  if (d == Device::Cuda) m.to_device(d, dtype_of(o), o.cuda_graphs == "on", ops::parse_attention_kernel(o.attention_kernel));
}

}  // namespace cascade::engine
