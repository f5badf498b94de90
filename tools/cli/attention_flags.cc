#include "attention_flags.h"

#include "core/error.h"
#include "cuda/runtime.h"

namespace cascade::cli {

void add_attention_flags(CLI::App* c, AttentionFlags& f) {
  c->add_option("--attention", f.attention, "full (exact) or ada (attention on representative tokens)")
      ->check(CLI::IsMember({"full", "ada"}))
      ->capture_default_str();
  c->add_option("--select", f.select,
                "With ada: how layer l+1's set is chosen from layer l's: full | cascade (exact, same set as full) |"
                " inherit | capped:K | random[:SEED]")
      ->capture_default_str();
  c->add_option("--rule", f.rule, "Selection rule: greedy | all-earlier")->capture_default_str();
  c->add_option("--tau", f.tau, "Gram threshold; a token is redundant at correlation >= 1 - tau^2")->capture_default_str();
  c->add_option("--similarity", f.similarity, "pearson (centred) or cosine")->capture_default_str();
  c->add_option("--ada-queries", f.queries, "reps (r x r attention, others copy their parent) or all")
      ->check(CLI::IsMember({"reps", "all"}))
      ->capture_default_str();
  c->add_flag("--proportional", f.proportional, "Add log(n_s) to the logit of representative s");
  c->add_option("--device", f.device,
                "cpu, or cuda (the GPU engine: exact attention, and ada with --select full|cascade, --rule greedy,"
                " --ada-queries reps|all, --proportional; needs a CUDA build and a GPU)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  c->add_option("--dtype", f.dtype,
                "Compute dtype of weights and activations (float32 accumulation): f32 | fp16 | bf16;"
                " default f32 on cpu (its only dtype), bf16 on cuda");
  c->add_option("--cuda-graphs", f.cuda_graphs,
                "With --device cuda and exact attention: replay each forward as a CUDA graph (on), or launch every"
                " kernel (off: the attention kernels' device time is then measured)")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
}

namespace {
DType dtype_of(const AttentionFlags& f) {
  if (f.dtype.empty()) return f.device == "cuda" ? DType::BF16 : DType::F32;
  return parse_compute_dtype(f.dtype);
}
}  // namespace

void place_model(Model& m, const AttentionFlags& f) {
  const Device d = parse_device(f.device);
  if (d == Device::Cuda) m.to_device(d, dtype_of(f), f.cuda_graphs == "on");
}

AdaOptions ada_options(const AttentionFlags& f) {
  AdaOptions o;
  o.select.tau = f.tau;
  o.select.rule = select::parse_rule(f.rule);
  o.select.similarity = select::parse_similarity(f.similarity);
  o.mode = select::parse_mode(f.select);
  o.queries = f.queries == "all" ? AdaQueries::all : AdaQueries::reps;
  o.proportional = f.proportional;
  return o;
}

std::unique_ptr<AttentionFactory> make_attention(const AttentionFlags& f) {
  const AdaOptions o = ada_options(f);  // validates the ADA flags even when unused
  const Device d = parse_device(f.device);
  const DType t = dtype_of(f);
  if (d == Device::Cpu && t != DType::F32)
    fail("--dtype ", f.dtype, ": the CPU engine computes in f32 only (fp16 and bf16 need --device cuda)");
  std::unique_ptr<AttentionFactory> method;
  if (f.attention == "ada") method = std::make_unique<AdaAttentionFactory>(o);
  if (d == Device::Cuda) {
    if (method) method->check_gpu();
    cuda::require_gpu();
  }
  return method;
}

}  // namespace cascade::cli
