// cascade.select's engine half: SPEC section 1/2 selection on a user's activation matrix, through the
// same select:: calls as a model layer (normalize, then run_layer), so a result here is what a layer
// with those features would select.
#include <optional>

#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>

#include "common.h"
#include "core/error.h"
#include "select/selection.h"

namespace cascade::py {

namespace {

// The layer index run_layer is given: it only seeds random:SEED's draw, here as at a model's layer 1.
constexpr int kLayer = 1;

// x [T, d]; prev_reps: the layer below's representatives over prev_T tokens (none: layer 0).
nb::dict select_layer(FeaturesIn x, double tau, std::optional<IdsIn> prev_reps, int64_t prev_T,
                      const std::string& rule, const std::string& similarity, const std::string& mode) {
  select::Options o;
  o.tau = tau;
  o.rule = select::parse_rule(rule);
  o.similarity = select::parse_similarity(similarity);
  (void)o.theta();  // validates tau before any work
  const select::ModeSpec spec = select::parse_mode(mode);
  select::Selection sel = run_released([&] {
    const select::Features z =
        select::normalize(x.data(), int64_t(x.shape(0)), int64_t(x.shape(1)), o.similarity);
    if (!prev_reps) return select::run_layer(z, nullptr, o, spec, kLayer);
    select::Selection prev;
    prev.reps.assign(prev_reps->data(), prev_reps->data() + prev_reps->shape(0));
    // Only prev's reps are read; its T() (the parent vector's length) is checked against x's.
    prev.parent.assign(size_t(prev_T), 0);
    return select::run_layer(z, &prev, o, spec, kLayer);
  });
  nb::dict d;
  d["reps"] = to_numpy(std::move(sel.reps));
  d["parents"] = to_numpy(std::move(sel.parent));
  d["added"] = to_numpy(std::move(sel.added));
  d["removed"] = to_numpy(std::move(sel.removed));
  d["gram_needed"] = sel.cost.needed;
  d["gram_computed"] = sel.cost.computed;
  d["refreshed"] = sel.refreshed;
  return d;
}

}  // namespace

void bind_select(nb::module_& m) {
  m.def("select", &select_layer, nb::arg("x"), nb::arg("tau"), nb::arg("prev_reps").none(), nb::arg("prev_T"),
        nb::arg("rule"), nb::arg("similarity"), nb::arg("mode"));
}

}  // namespace cascade::py
