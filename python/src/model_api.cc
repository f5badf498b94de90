// cascade.Model's engine half: load, logits, generate, tokenize/detokenize, spec and the per-layer
// ADA trace. Each call converts its arguments with the GIL held, runs the engine with it released,
// and converts back with it held again. Argument checking and docstrings live in python/cascade.
#include <nanobind/stl/string.h>
#include <nanobind/stl/unique_ptr.h>

#include "common.h"
#include "core/error.h"
#include "model/model_tokenizer.h"
#include "model/sampler.h"
#include "py_model.h"

namespace cascade::py {

PyModel::PyModel(const std::string& path, const std::string& device, const std::string& tokenizer)
    : path_(path), tokenizer_path_(tokenizer) {
  CASCADE_CHECK(device == "cpu", "device '", device, "' is not available: this build of cascade runs on the cpu");
  m_ = Model::load(path);
  if (!tokenizer.empty()) tok_ = model_tokenizer(*m_, path, tokenizer);  // a bad file fails at load
}

const Tokenizer& PyModel::tokenizer() {
  if (!tok_) tok_ = model_tokenizer(*m_, path_, tokenizer_path_);
  return *tok_;
}

namespace {

std::span<const int32_t> span_of(const IdsIn& ids) { return {ids.data(), ids.shape(0)}; }

// logits [T, V] of one forward pass from an empty sequence.
nb::object logits(PyModel& pm, IdsIn ids, const AttentionSpec& a) {
  Tensor out = run_released([&] {
    const AdaAttentionFactory f(a.options);
    Sequence s = pm.model().new_sequence(a.ada ? &f : nullptr);
    return pm.model().forward(s, span_of(ids));
  });
  return to_numpy(std::move(out));
}

// The prompt's continuation (the prompt itself is not repeated), as `cascade generate` makes it:
// the prompt prefilled in one pass, then one token at a time until max_new, EOS or a full context.
// Bytes: the last token may end inside a UTF-8 character; Python decodes with replacement.
nb::bytes generate(PyModel& pm, const std::string& prompt, int64_t max_new, double temperature, int64_t top_k,
                     double top_p, uint64_t seed, const AttentionSpec& a) {
  CASCADE_CHECK(max_new >= 0, "max_new_tokens must be >= 0, got ", max_new);
  Sampler sampler({temperature, top_k, top_p, seed});
  const Tokenizer& tok = pm.tokenizer();
  const std::string text = run_released([&] {
    const Model& m = pm.model();
    const std::vector<int32_t> ids = tok.encode(prompt, true);
    CASCADE_CHECK(!ids.empty(), "the prompt is empty and the tokenizer adds no BOS token: nothing to condition on");
    const int64_t ctx = m.spec().max_positions;
    CASCADE_CHECK(int64_t(ids.size()) <= ctx, "the prompt is ", ids.size(),
                  " tokens, longer than the model's context of ", ctx, " tokens");
    const AdaAttentionFactory f(a.options);
    Sequence s = m.new_sequence(a.ada ? &f : nullptr);
    Tensor logits = m.forward(s, ids, true);
    StreamDecoder out(tok);
    std::string text;
    for (int64_t i = 0; i < max_new; ++i) {
      check_signals();
      const int32_t next = sampler.next(logits.data(), logits.dim(1));
      if (tok.eos_id() && next == *tok.eos_id()) break;
      text += out.push(next);
      if (s.length() == ctx) break;
      logits = m.forward(s, std::vector<int32_t>{next}, true);
    }
    return text + out.flush();
  });
  return nb::bytes(text.data(), text.size());
}

// One dict per layer: the prefill's selection, its Gram counts, and the two study measurements.
nb::list trace(PyModel& pm, IdsIn ids, const AttentionSpec& a) {
  CASCADE_CHECK(a.ada, "trace needs attention='ada' (exact attention selects nothing)");
  AdaOptions measured = a.options;
  measured.measure_error = measured.compare_full = true;
  std::vector<AdaLayerTrace> layers = run_released([&] {
    const AdaAttentionFactory f(measured);
    Sequence s = pm.model().new_sequence(&f);
    (void)pm.model().forward(s, span_of(ids));
    std::vector<AdaLayerTrace> t;
    for (int l = 0; l < int(pm.model().spec().n_layers); ++l) t.push_back(*s.trace(l));
    return t;
  });
  nb::list out;
  for (AdaLayerTrace& t : layers) {
    select::Selection& sel = t.selection;
    nb::dict d;
    d["reps"] = to_numpy(std::move(sel.reps));
    d["parents"] = to_numpy(std::move(sel.parent));
    d["added"] = to_numpy(std::move(sel.added));
    d["removed"] = to_numpy(std::move(sel.removed));
    d["refreshed"] = sel.refreshed;
    d["gram_needed"] = sel.cost.needed;
    d["gram_computed"] = sel.cost.computed;
    d["attention_error"] = t.attention_error;
    d["jaccard_vs_full"] = t.jaccard_vs_full;
    out.append(d);
  }
  return out;
}

}  // namespace

void bind_model(nb::module_& m) {
  nb::class_<AttentionSpec>(m, "Attention")
      .def(nb::init<const std::string&, const std::string&, double, const std::string&, const std::string&,
                    const std::string&, bool>(),
           nb::kw_only(), nb::arg("attention") = "full", nb::arg("select") = "cascade", nb::arg("tau") = 0.30,
           nb::arg("rule") = "greedy", nb::arg("similarity") = "pearson", nb::arg("queries") = "reps",
           nb::arg("proportional") = false);

  nb::class_<PyModel>(m, "Model")
      .def_static(
          "load",
          [](const std::string& path, const std::string& device, const std::string& tokenizer) {
            return run_released([&] { return std::make_unique<PyModel>(path, device, tokenizer); });
          },
          nb::arg("path"), nb::arg("device"), nb::arg("tokenizer"))
      .def("logits", &logits, nb::arg("ids"), nb::arg("attention"))
      .def("generate", &generate, nb::arg("prompt"), nb::arg("max_new_tokens"), nb::arg("temperature"),
           nb::arg("top_k"), nb::arg("top_p"), nb::arg("seed"), nb::arg("attention"))
      .def("trace", &trace, nb::arg("ids"), nb::arg("attention"))
      .def(
          "tokenize",
          [](PyModel& pm, const std::string& text, bool add_special) {
            const Tokenizer& tok = pm.tokenizer();
            return to_numpy(run_released([&] { return tok.encode(text, add_special); }));
          },
          nb::arg("text"), nb::arg("add_special"))
      .def(
          "detokenize",
          [](PyModel& pm, IdsIn ids) {
            const std::string text = pm.tokenizer().decode(span_of(ids));
            return nb::bytes(text.data(), text.size());
          },
          nb::arg("ids"))
      .def_prop_ro("spec", [](const PyModel& pm) { return to_python(pm.model().spec().describe()); })
      .def_prop_ro("path", &PyModel::path);
}

}  // namespace cascade::py
