// The study's outputs in out_dir, all from one StudySummary (study_metrics.h) so they agree:
//   report.md       run parameters, tables (mean +- std over windows), the paper-vs-ours table,
//                   per-layer tables for `cascade`, the tau sweep, links to the figures;
//   metrics.json    the same figures plus per-window values of every window metric;
//   per_layer.csv   one row per (configuration, window, layer) with every per-layer value;
//   *.svg           jaccard_by_layer, r_over_T_by_layer, attention_error_by_layer, quality_cost;
// under the continuation protocol report.md holds the frontier table and the figures are
// frontier_kept.svg and frontier_time.svg (quality against kept fraction and against time).
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "arch/arch_spec.h"
#include "eval/study.h"
#include "eval/study_metrics.h"

namespace cascade {

// What the report says about the run beyond StudyParams.
struct StudyInfo {
  std::string date;    // when the report was written (UTC)
  std::string commit;  // engine commit (git describe), "" when unknown
  int threads = 0;     // CPU threads the kernels could use (the phase times depend on it)
};

// The paper's ranges (GPT-2 124M, GPT-J 6B, OPT 6.7B).
inline constexpr double kPaperSavingsLo = 0.22, kPaperSavingsHi = 0.63;
inline constexpr double kPaperJaccardLo = 0.83, kPaperJaccardHi = 0.94;

// One row of the paper-vs-ours table: our mean against the paper's range, for `cascade` (ADA's own
// trajectory) and `exact-trajectory` (the model's activations).
struct PaperComparison {
  std::string quantity, config, key;  // key: the window metric of config compared
  double lo, hi;
  MeanStd ours;
  bool inside() const { return ours.mean >= lo && ours.mean <= hi; }
};
std::vector<PaperComparison> paper_vs_ours(const StudySummary& s);

void write_report_md(const StudyRun& run, const StudySummary& s, const ArchSpec& a, const StudyInfo& info,
                     const std::filesystem::path& file);
// The continuation protocol's report: the frontier table, kept fraction by layer, the figures.
void write_frontier_report_md(const StudyRun& run, const StudySummary& s, const ArchSpec& a, const StudyInfo& info,
                              const std::filesystem::path& file);
void write_metrics_json(const StudyRun& run, const StudySummary& s, const ArchSpec& a, const StudyInfo& info,
                        const std::filesystem::path& file);
void write_per_layer_csv(const StudyRun& run, const std::filesystem::path& file);
// Writes the figures into out_dir (four; the two frontiers under the continuation protocol); returns their file names.
std::vector<std::string> write_study_figures(const StudySummary& s, const std::filesystem::path& out_dir);

// All of the above into out_dir; returns the names of the files written.
std::vector<std::string> write_study_outputs(const StudyRun& run, const ArchSpec& a, const StudyInfo& info,
                         const std::filesystem::path& out_dir);

// A tau as configuration names and figure labels write it ("%g": 0.3, 0.05).
std::string tau_text(double tau);

}  // namespace cascade
