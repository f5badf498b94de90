#include "engine/study_driver.h"

#include <omp.h>

#include <filesystem>

#include "core/clock.h"
#include "engine/text_file.h"
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
  (void)study_configs(p);  // a bad tau or cap fails before anything is loaded
  std::string text = read_text_file(p.text);
  p.model = absolute(p.model);
  p.tokenizer = absolute(p.tokenizer);
  p.text = absolute(p.text);
  return {std::move(r), std::move(text)};
}

StudyOutcome run_prepared_study(const Model& m, const Tokenizer& tok, PreparedStudy s, const std::string& commit,
                                const std::function<void()>& tick) {
  StudyRequest& r = s.request;
  const std::vector<int32_t> ids = tok.encode(s.text, true);
  r.params.n_tokens = int64_t(ids.size());
  StudyOutcome o{run_study(m, ids, r.params, r.out, r.overwrite, r.quiet, tick), {}};
  if (!r.out.empty()) o.files = write_study_outputs(o.run, m.spec(), {utc_now(), commit, omp_get_max_threads()}, r.out);
  return o;
}

}  // namespace cascade::engine
