#include "engine/study_methods.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>

#include "attention/kv_press_scores.h"
#include "core/error.h"

namespace cascade::engine {

namespace {

// "%g" names a point; the option itself is set from the exact value.
std::string number_text(double x, const char* format = "%g") {
  char b[32];
  std::snprintf(b, sizeof b, format, x);
  return b;
}

// Splits on '+'; every part must be non-empty.
std::vector<std::string> parts_of(const std::string& item) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    const size_t plus = item.find('+', start);
    parts.push_back(item.substr(start, plus == std::string::npos ? std::string::npos : plus - start));
    if (parts.back().empty()) fail("--methods ", item, ": an empty method name or variant (NAME[+VARIANT...])");
    if (plus == std::string::npos) return parts;
    start = plus + 1;
  }
}

// Options the study sets itself, from other flags.
bool set_by_study(const std::string& keyword) {
  for (const char* k : {"attention", "tau", "kv_budget", "device", "dtype", "cuda_graphs", "attention_kernel"})
    if (keyword == k) return true;
  return false;
}

std::string variant_list() {
  std::string s;
  for (const auto& [name, meaning] : study_variant_names()) s += (s.empty() ? "" : ", ") + name;
  return s;
}

void set_option(AttentionOptions& o, const std::string& item, const std::string& keyword, const std::string& value) {
  try {
    set_attention_option(o, keyword, value, "--methods " + item + " (" + keyword + ")");
  } catch (const Error& e) {
    const std::string what = e.what();
    // The table names the item's option already, or (an unknown keyword) does not: say which item.
    if (what.rfind("--methods ", 0) == 0) throw;
    fail("--methods ", item, ": ", what);
  }
}

bool ada_like(const std::string& name) { return name == "ada" || name.rfind("ada-", 0) == 0; }

StudyConfig make_config(std::string name, const std::string& item, AttentionOptions o) {
  StudyConfig c;
  c.name = std::move(name);
  c.method = item;
  c.ada.select.tau = std::numeric_limits<double>::quiet_NaN();
  c.factory = std::shared_ptr<const AttentionFactory>(make_attention(o).release());
  return c;
}

void check_unique(const std::vector<double>& v, const char* flag) {
  for (double x : v)
    if (std::count(v.begin(), v.end(), x) > 1) fail(flag, " names ", x, " twice");
}

}  // namespace

const std::vector<std::pair<std::string, std::string>>& study_variant_names() {
  static const std::vector<std::pair<std::string, std::string>> v = {
      {"keys", "features=keys"},     {"span", "rule=span"},       {"all-earlier", "rule=all-earlier"},
      {"lstsq", "reconstruct=lstsq"}, {"all-queries", "queries=all"}, {"proportional", "proportional=true"},
      {"full-select", "select=full"}};
  return v;
}

std::vector<std::string> default_study_methods() {
  std::vector<std::string> m = {"full", "ada"};
  m.insert(m.end(), press::method_names().begin(), press::method_names().end());
  return m;
}

AttentionOptions parse_study_method(const std::string& item, const AttentionOptions& base) {
  const std::vector<std::string> parts = parts_of(item);
  AttentionOptions o = base;
  set_option(o, item, "attention", parts[0]);
  for (size_t i = 1; i < parts.size(); ++i) {
    std::string kv = parts[i];
    for (const auto& [name, meaning] : study_variant_names())
      if (kv == name) kv = meaning;
    const size_t eq = kv.find('=');
    if (eq == std::string::npos)
      fail("--methods ", item, ": unknown variant '", parts[i], "' (a variant is one of ", variant_list(),
           ", or KEYWORD=VALUE for an attention option)");
    const std::string keyword = kv.substr(0, eq), value = kv.substr(eq + 1);
    if (set_by_study(keyword))
      fail("--methods ", item, ": ", keyword, " is set by the study itself (--tau, --tau-sweep, --budgets, --device, --dtype)");
    set_option(o, item, keyword, value);
  }
  return o;
}

AttentionOptions study_placement(const StudyParams& p) {
  AttentionOptions o;
  set_attention_option(o, "device", p.device, "--device");
  if (!p.dtype.empty()) set_attention_option(o, "dtype", p.dtype, "--dtype");
  set_attention_option(o, "attention_kernel", p.attention_kernel, "--attention-kernel");
  return o;
}

std::vector<StudyConfig> continuation_configs(const StudyParams& p) {
  for (double b : p.budgets)
    if (!(b > 0 && b <= 1)) fail("--budgets: ", b, " is not a kept fraction in (0, 1]");
  check_unique(p.budgets, "--budgets");
  check_unique(p.tau_sweep, "--tau-sweep");
  (void)select::Options{.tau = p.tau}.theta();  // as under the prefill protocol: every tau is checked
  for (double t : p.tau_sweep) (void)select::Options{.tau = t}.theta();
  if (p.methods.empty()) fail("--methods: no method given");
  const AttentionOptions base = study_placement(p);
  std::vector<double> taus = {p.tau};
  for (double t : p.tau_sweep)
    if (t != p.tau) taus.push_back(t);
  std::vector<StudyConfig> out;
  for (const std::string& item : p.methods) {
    const AttentionOptions o = parse_study_method(item, base);
    if (o.attention == "full") {
      out.push_back(make_config(item, item, o));
    } else if (ada_like(o.attention)) {
      for (double tau : taus) {
        AttentionOptions a = o;
        set_option(a, item, "tau", number_text(tau, "%.17g"));
        out.push_back(make_config(item + "@tau=" + number_text(tau), item, a));
        out.back().ada.select.tau = tau;
        out.back().sweep = tau != p.tau;
      }
    } else {
      for (double b : p.budgets) {
        AttentionOptions a = o;
        set_option(a, item, "kv_budget", number_text(b, "%.17g"));
        out.push_back(make_config(item + "@" + number_text(b), item, a));
        out.back().budget = b;
      }
    }
  }
  for (const StudyConfig& c : out)
    if (std::count_if(out.begin(), out.end(), [&](const StudyConfig& d) { return d.name == c.name; }) > 1)
      fail("--methods names the configuration ", c.name, " twice");
  return out;
}

}  // namespace cascade::engine
