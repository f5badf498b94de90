// The study's state on disk, so that a long run can be stopped and resumed: out_dir/params.json
// (what was asked, StudyParams) and out_dir/windows.jsonl (one finished window per line, flushed as
// it completes). A restart with the same parameters keeps the finished windows; different
// parameters are refused rather than mixed into one set of statistics.
//
// JSON keeps every double to the last bit (nlohmann writes the shortest text that reads back to the
// same value), so a resumed study computes exactly the statistics of an uninterrupted one.
#pragma once
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eval/study.h"

namespace cascade {

nlohmann::json params_json(const StudyParams& p);
nlohmann::json window_json(const WindowRaw& w);
// cascade::Error (naming `where`) on a record that is not a study window.
WindowRaw window_from_json(const nlohmann::json& j, const std::string& where);

class StudyStore {
 public:
  // Prepares out_dir for a study of p whose windows are `planned` and configurations `names`:
  //  - no params.json there: a fresh study (created, any old windows.jsonl discarded);
  //  - params.json equal to p's: the windows already in windows.jsonl are loaded (a last line cut off
  //    by an interruption is dropped); a record that does not belong to this plan is cascade::Error;
  //  - different params.json: cascade::Error naming the differences, unless overwrite (fresh study).
  StudyStore(const std::filesystem::path& out_dir, const StudyParams& p, const std::vector<int64_t>& planned,
             const std::vector<std::string>& names, bool overwrite);
  const std::vector<WindowRaw>& done() const { return done_; }
  // Appends one finished window as a line of windows.jsonl and flushes it.
  void append(const WindowRaw& w);

 private:
  std::filesystem::path dir_;
  std::vector<WindowRaw> done_;
  std::ofstream log_;
};

}  // namespace cascade
