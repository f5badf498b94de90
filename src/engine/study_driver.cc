#include "engine/study_driver.h"

#include <omp.h>

#include <filesystem>

#include "core/clock.h"
#include "core/error.h"
#include "engine/text_file.h"
#include "engine/study_methods.h"
#include "eval/study_report.h"

namespace cascade::engine {

namespace {
// params.json records absolute paths, so that a study resumed from another folder matches.
std::string absolute(const std::string& path) {
  return path.empty() ? path : std::filesystem::absolute(path).lexically_normal().string();
}
}  // namespace

PreparedStudy prepare_study(StudyRequest r) {
  StudyParams& p = r.params;
  p.similarity = select::parse_similarity(r.similarity);
  p.protocol = parse_study_protocol(r.protocol);
  PreparedStudy s;
  const AttentionOptions placement = study_placement(p);
  if (p.protocol == StudyProtocol::continuation) {
    if (r.continuation != 0) p.continuation = r.continuation;
    p.methods = r.methods.empty() ? default_study_methods() : r.methods;
    if (!r.budgets.empty()) p.budgets = r.budgets;
    s.configs = continuation_configs(p);
  } else {
    if (r.continuation != 0 || !r.methods.empty() || !r.budgets.empty())
      fail("--continuation, --methods and --budgets are for --protocol continuation");
    for (StudyConfig& c : study_configs(p)) {  // a bad tau or cap fails before anything is loaded
      if (c.exact_trajectory && placement.device != "cpu") {
        s.notes.push_back("`" + c.name + "` is left out on " + placement.device +
                          ": it observes the CPU layers' features (eval/study_observer.h)");
        continue;
      }
      if (placement.device != "cpu") {  // the measured run's options, as run_window asks for them
        AdaOptions measured = c.ada;
        measured.measure_error = measured.compare_full = true;
        try {  // a selection mode the GPU lacks (inherit, capped, random) is left out, and said so
          AdaAttentionFactory(measured).check_gpu();
        } catch (const Error& e) {
          s.notes.push_back("`" + c.name + "` is left out on " + placement.device + ": " + e.what());
          continue;
        }
      }
      s.configs.push_back(std::move(c));
    }
    (void)make_attention(placement);  // the placement: a CUDA build, a GPU, a dtype the device has
  }
  s.text = read_text_file(p.text);
  p.model = absolute(p.model);
  p.tokenizer = absolute(p.tokenizer);
  p.text = absolute(p.text);
  s.request = std::move(r);
  return s;
}

StudyOutcome run_prepared_study(const Model& m, const Tokenizer& tok, PreparedStudy s, const std::string& commit,
                                const std::function<void()>& tick) {
  StudyRequest& r = s.request;
  const std::vector<int32_t> ids = tok.encode(s.text, true);
  r.params.n_tokens = int64_t(ids.size());
  if (m.device() != parse_device(r.params.device))
    fail("study: the model runs on ", m.device() == Device::Cuda ? "cuda" : "cpu", ", the study asks for --device ",
         r.params.device);
  StudyOutcome o{run_study(m, ids, r.params, std::move(s.configs), r.out, r.overwrite, r.quiet, tick), {}};
  o.run.notes = std::move(s.notes);
  if (!r.out.empty()) o.files = write_study_outputs(o.run, m.spec(), {utc_now(), commit, omp_get_max_threads()}, r.out);
  return o;
}

}  // namespace cascade::engine
