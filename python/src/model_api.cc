// cascade.Model's engine half: load, logits, generate, perplexity, tokenize/detokenize, spec and the
// per-layer ADA trace, each a thin adapter over src/engine. Each call converts its arguments with the
// GIL held, runs the engine with it released, and converts back with it held again. Argument
// checking and docstrings live in python/cascade.
#include <nanobind/stl/string.h>
#include <nanobind/stl/unique_ptr.h>

#include "common.h"
#include "core/error.h"
#include "engine/generate.h"
#include "engine/text_file.h"
#include "engine/text_perplexity.h"
#include "model/model_tokenizer.h"
#include "py_model.h"

namespace cascade::py {

PyModel::PyModel(const std::string& path, const engine::AttentionOptions& placement, const std::string& tokenizer)
    : path_(path), tokenizer_path_(tokenizer), placement_(placement) {
  (void)engine::make_attention(placement_);  // a device this build or machine lacks fails before loading
  m_ = Model::load(path);
  engine::place_model(*m_, placement_);
  if (!tokenizer.empty()) tok_ = model_tokenizer(*m_, path, tokenizer);  // a bad file fails at load
}

const Tokenizer& PyModel::tokenizer() {
  if (!tok_) tok_ = model_tokenizer(*m_, path_, tokenizer_path_);
  return *tok_;
}

engine::AttentionOptions PyModel::placed(engine::AttentionOptions call) const {
  call.device = placement_.device;
  call.dtype = placement_.dtype;
  call.cuda_graphs = placement_.cuda_graphs;
  call.attention_kernel = placement_.attention_kernel;
  return call;
}

namespace {

std::span<const int32_t> span_of(const IdsIn& ids) { return {ids.data(), ids.shape(0)}; }

// float32 logits [T, V] of one forward pass over ids, after a pass over context (its logits unused)
// when that is not empty: a NumPy array on the CPU; on the GPU a DLPack-capable array (nanobind's
// nb_ndarray, framework array_api: __dlpack__ and __dlpack_device__; without a framework nanobind
// returns a bare DLPack capsule) over device memory it owns, with no copy to the host (python/cascade hands it to torch
// when torch is installed).
nb::object logits(PyModel& pm, IdsIn ids, const engine::AttentionOptions& a, IdsIn context) {
  const auto attention = engine::make_attention(pm.placed(a));
  const auto prefill = [&](Sequence& s) {
    if (context.shape(0) > 0) (void)pm.model().forward(s, span_of(context), /*last_only=*/true);
  };
  if (pm.model().device() == Device::Cuda) {
    CASCADE_CHECK(ids.shape(0) > 0, "logits need at least one token id");
    DeviceLogits out = run_released([&] {
      Sequence s = pm.model().new_sequence(attention.get());
      prefill(s);
      return pm.model().forward_on_device(s, span_of(ids));
    });
    auto* owned = new DeviceLogits(std::move(out));
    nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<DeviceLogits*>(p); });
    return nb::ndarray<nb::array_api, float, nb::ndim<2>, nb::device::cuda>(owned->memory.get(),
                                                             {size_t(owned->rows), size_t(owned->vocab)}, owner, {},
                                                             nb::dtype<float>(), nb::device::cuda::value, owned->device)
        .cast();
  }
  Tensor out = run_released([&] {
    Sequence s = pm.model().new_sequence(attention.get());
    prefill(s);
    return pm.model().forward(s, span_of(ids));
  });
  return to_numpy(std::move(out));
}

// The prompt's continuation (engine/generate.h). Bytes: the last token may end inside a UTF-8
// character; Python decodes with replacement. Ctrl-C stops the loop between tokens and raises.
nb::bytes generate(PyModel& pm, const std::string& prompt, int64_t max_new, double temperature, int64_t top_k,
                   double top_p, uint64_t seed, bool ignore_eos, const engine::AttentionOptions& a) {
  const engine::GenerateOptions o{max_new, {temperature, top_k, top_p, seed}, ignore_eos};
  engine::check_generate_options(o);
  const auto attention = engine::make_attention(pm.placed(a));
  const Tokenizer& tok = pm.tokenizer();
  const engine::Generation g = run_released(
      [&] { return engine::generate(pm.model(), tok, attention.get(), prompt, o, {{}, signal_pending}); });
  if (g.stop == engine::StopReason::cancelled) raise_pending();
  return nb::bytes(g.text.data(), g.text.size());
}

// The report of `cascade perplexity --json` as a dict; Ctrl-C stops between windows.
nb::object perplexity(PyModel& pm, const std::string& text_path, int64_t ctx, int64_t stride, int64_t max_windows,
                      const engine::AttentionOptions& a) {
  const auto attention = engine::make_attention(pm.placed(a));
  const std::string text = engine::read_text_file(text_path);
  const Tokenizer& tok = pm.tokenizer();
  const nlohmann::json report = run_released([&] {
    const auto tick = [](const engine::TextPerplexity&, int64_t, int64_t) { check_signals(); };
    return engine::text_perplexity(pm.model(), tok, pm.path(), text_path, text, {ctx, stride, max_windows},
                                   attention.get(), tick)
        .report();
  });
  return to_python(report);
}

// One dict per layer: the prefill's selection, its Gram counts, and the two study measurements
// (None on the GPU, which does not take them: AdaAttentionFactory::check_gpu).
nb::list trace(PyModel& pm, IdsIn ids, const engine::AttentionOptions& a) {
  CASCADE_CHECK(a.attention == "ada", "trace needs attention='ada' (exact attention selects nothing)");
  const bool measured = pm.model().device() == Device::Cpu;
  const auto attention = engine::make_attention(pm.placed(a), measured);
  std::vector<AdaLayerTrace> layers = run_released([&] {
    Sequence s = pm.model().new_sequence(attention.get());
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
    d["attention_error"] = measured ? nb::object(nb::float_(t.attention_error)) : nb::none();
    d["jaccard_vs_full"] = measured ? nb::object(nb::float_(t.jaccard_vs_full)) : nb::none();
    out.append(d);
  }
  return out;
}

}  // namespace

void bind_model(nb::module_& m) {
  nb::class_<engine::AttentionOptions>(m, "Attention")
      .def("__init__",
           [](engine::AttentionOptions* self, nb::kwargs kw) {
             new (self) engine::AttentionOptions();
             set_options(*self, kw, /*placement=*/false);
           });

  nb::class_<PyModel>(m, "Model")
      .def_static(
          "load",
          [](const std::string& path, const std::string& tokenizer, nb::kwargs placement) {
            engine::AttentionOptions p;
            set_options(p, placement, /*placement=*/true);
            return run_released([&] { return std::make_unique<PyModel>(path, p, tokenizer); });
          },
          nb::arg("path"), nb::arg("tokenizer"), nb::arg("placement"))
      .def("logits", &logits, nb::arg("ids"), nb::arg("attention"), nb::arg("context"))
      .def("generate", &generate, nb::arg("prompt"), nb::arg("max_new_tokens"), nb::arg("temperature"),
           nb::arg("top_k"), nb::arg("top_p"), nb::arg("seed"), nb::arg("ignore_eos"), nb::arg("attention"))
      .def("perplexity", &perplexity, nb::arg("text"), nb::arg("ctx"), nb::arg("stride"), nb::arg("max_windows"),
           nb::arg("attention"))
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
      .def_prop_ro("path", &PyModel::path)
      .def_prop_ro("device", [](const PyModel& pm) { return pm.model().device() == Device::Cuda ? "cuda" : "cpu"; })
      .def_prop_ro("dtype", [](const PyModel& pm) {
        // the spelling load() takes
        switch (pm.model().compute_dtype()) {
          case DType::F16: return "fp16";
          case DType::BF16: return "bf16";
          default: return "f32";
        }
      });
}

}  // namespace cascade::py
