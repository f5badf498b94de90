// The ADA study (eval/study.h) as `cascade study` and cascade.study set it up and run it: the
// parameters checked and the text read before any model is loaded, then the text tokenized once,
// the windows run (resuming a study stopped in `out`) and the report written there.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "eval/study.h"
#include "tokenizer/tokenizer.h"

namespace cascade::engine {

struct StudyRequest {
  StudyParams params;                  // model, tokenizer and text as given (made absolute here)
  std::string similarity = "pearson";  // parsed into params.similarity
  // The protocol and, for the continuation protocol only, its flags as given (empty / 0: not given,
  // the defaults then go into params: M = 256, engine::default_study_methods(), budgets 0.1,0.25,0.5).
  std::string protocol = "prefill";
  int64_t continuation = 0;
  std::vector<std::string> methods;
  std::vector<double> budgets;
  std::string out;                     // output folder; "" keeps nothing on disk
  bool overwrite = false, quiet = false;
};

struct PreparedStudy {
  StudyRequest request;  // params checked, paths absolute
  std::string text;      // the whole text file
  std::vector<StudyConfig> configs;
  std::vector<std::string> notes;  // configurations left out, for the report
};

// cascade::Error for a bad similarity, tau, cap, protocol, method list or placement (checked with
// make_attention: a GPU the build or machine lacks, ADA options its GPU twin lacks -- the prefill
// protocol's measured runs included), a continuation flag under the prefill protocol, or a text
// file that is missing or empty. On the GPU the prefill protocol leaves out `exact-trajectory`
// (study_observer.h is a CPU instrument) and the selection modes the GPU lacks (inherit, capped,
// random), and says so in the report.
PreparedStudy prepare_study(StudyRequest r);

struct StudyOutcome {
  StudyRun run;
  std::vector<std::string> files;  // written into out, if any
};

// tick runs after each configuration of each window (Ctrl-C from Python); commit names the engine
// in the report ("" when unknown). The model must already run where params.device says
// (place_model(m, study_placement(params))): cascade::Error otherwise.
StudyOutcome run_prepared_study(const Model& m, const Tokenizer& tok, PreparedStudy s, const std::string& commit,
                                const std::function<void()>& tick = {});

}  // namespace cascade::engine
