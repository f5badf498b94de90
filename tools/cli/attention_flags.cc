#include "attention_flags.h"

#include "core/error.h"

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
  if (f.attention == "full") return nullptr;
  return std::make_unique<AdaAttentionFactory>(o);
}

}  // namespace cascade::cli
