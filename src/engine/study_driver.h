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
  std::string out;                     // output folder; "" keeps nothing on disk
  bool overwrite = false, quiet = false;
};

struct PreparedStudy {
  StudyRequest request;  // params checked, paths absolute
  std::string text;      // the whole text file
};

// cascade::Error for a bad similarity, tau or cap, or a text file that is missing or empty.
PreparedStudy prepare_study(StudyRequest r);

struct StudyOutcome {
  StudyRun run;
  std::vector<std::string> files;  // written into out, if any
};

// tick runs after each configuration of each window (Ctrl-C from Python); commit names the engine
// in the report ("" when unknown).
StudyOutcome run_prepared_study(const Model& m, const Tokenizer& tok, PreparedStudy s, const std::string& commit,
                                const std::function<void()>& tick = {});

}  // namespace cascade::engine
