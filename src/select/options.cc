// Option parsing and the small shared helpers of the selection (see selection.h and scan_util.h).
// Every text a user can give is parsed here, so that a typo is one cascade::Error naming the choices.
#include <algorithm>
#include <charconv>
#include <cstdint>
#include <iterator>

#include "core/error.h"
#include "select/scan_util.h"

namespace cascade::select {

double Options::theta() const {
  // !(tau >= 0) also rejects NaN.
  CASCADE_CHECK(tau >= 0.0 && tau < 1.0, "selection tau must be in [0, 1), got ", tau);
  return 1.0 - tau * tau;
}

Similarity parse_similarity(std::string_view text) {
  if (text == "pearson") return Similarity::pearson;
  if (text == "cosine") return Similarity::cosine;
  fail("unknown similarity '", text, "' (expected pearson or cosine)");
}

Rule parse_rule(std::string_view text) {
  if (text == "greedy") return Rule::greedy;
  if (text == "all-earlier") return Rule::all_earlier;
  if (text == "span") return Rule::span;
  fail("unknown selection rule '", text, "' (expected greedy, all-earlier or span)");
}

// A non-negative decimal integer filling the whole text, or a cascade::Error naming what.
static uint64_t parse_count(std::string_view text, std::string_view what) {
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  CASCADE_CHECK(!text.empty() && ec == std::errc() && end == text.data() + text.size(), "bad ", what,
                " '", text, "' (expected a non-negative integer)");
  return v;
}

ModeSpec parse_mode(std::string_view text) {
  const size_t colon = text.find(':');
  const std::string_view name = text.substr(0, colon);
  const bool has_arg = colon != std::string_view::npos;
  const std::string_view arg = has_arg ? text.substr(colon + 1) : std::string_view();
  ModeSpec m;
  if (name == "capped") {
    CASCADE_CHECK(has_arg, "selection mode 'capped' needs a cap: capped:K");
    m.mode = Mode::capped;
    const uint64_t cap = parse_count(arg, "cap in selection mode 'capped:K'");
    CASCADE_CHECK(cap <= uint64_t(INT32_MAX), "cap ", cap, " in '", text, "' is too large");
    m.cap = int64_t(cap);
    return m;
  }
  if (name == "random") {
    m.mode = Mode::random;
    if (has_arg) m.seed = parse_count(arg, "seed in selection mode 'random:SEED'");
    return m;
  }
  CASCADE_CHECK(!has_arg, "selection mode '", name, "' takes no argument, got '", text, "'");
  if (name == "full") m.mode = Mode::full;
  else if (name == "cascade") m.mode = Mode::cascade;
  else if (name == "inherit") m.mode = Mode::inherit;
  else fail("unknown selection mode '", text, "' (expected full, cascade, inherit, capped:K, random[:SEED])");
  return m;
}

std::string to_string(Similarity s) { return s == Similarity::pearson ? "pearson" : "cosine"; }
std::string to_string(Rule r) {
  switch (r) {
    case Rule::greedy: return "greedy";
    case Rule::all_earlier: return "all-earlier";
    case Rule::span: return "span";
  }
  return "";  // unreachable: every enumerator returns above
}

std::string to_string(const ModeSpec& m) {
  switch (m.mode) {
    case Mode::full: return "full";
    case Mode::cascade: return "cascade";
    case Mode::inherit: return "inherit";
    case Mode::capped: return "capped:" + std::to_string(m.cap);
    case Mode::random: return "random:" + std::to_string(m.seed);
  }
  return "";  // unreachable: every enumerator returns above
}

GramCounts& GramCounts::operator+=(const GramCounts& o) {
  needed += o.needed;
  computed += o.computed;
  seconds += o.seconds;
  return *this;
}

namespace detail {

void fill_diff(const std::vector<int32_t>& prev, Selection& out) {
  out.added.clear();
  out.removed.clear();
  std::set_difference(out.reps.begin(), out.reps.end(), prev.begin(), prev.end(),
                      std::back_inserter(out.added));
  std::set_difference(prev.begin(), prev.end(), out.reps.begin(), out.reps.end(),
                      std::back_inserter(out.removed));
}

void check_prev(int64_t T, const Selection& prev) {
  CASCADE_CHECK(prev.T() == T, "the previous layer's selection covers ", prev.T(), " tokens but this layer has ", T);
  CASCADE_CHECK(!prev.reps.empty() && prev.reps.front() == 0 &&
                    std::is_sorted(prev.reps.begin(), prev.reps.end()) &&
                    std::adjacent_find(prev.reps.begin(), prev.reps.end()) == prev.reps.end() &&
                    prev.reps.back() < T,
                "the previous layer's representatives must be sorted, distinct, start at 0 and lie "
                "below T");
}

}  // namespace detail
}  // namespace cascade::select
