// What the binding files share: the engine's attention options from Python keywords, engine
// buffers handed to NumPy without a copy, JSON to Python, and Ctrl-C while the GIL is released.
//
// Design: the engine runs with the GIL released (model calls take seconds); its long loops (tokens,
// study windows) call check_signals() between steps, which takes the GIL just long enough to run
// Python's signal handlers. A pending KeyboardInterrupt unwinds the engine as Interrupted and is
// raised in Python by run_released(); generate, which can stop cleanly, asks signal_pending().
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nlohmann/json.hpp>

#include "core/tensor.h"
#include "engine/attention_options.h"

namespace cascade::py {

namespace nb = nanobind;

// Ids and features as the engine reads them: host memory, row-major; the Python side converts.
using IdsIn = nb::ndarray<const int32_t, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
using FeaturesIn = nb::ndarray<const float, nb::ndim<2>, nb::c_contig, nb::device::cpu>;

// The engine's options (engine/attention_options.h) from Python keywords: those of a call
// (placement false) or those of load() (placement true: device, dtype, cuda_graphs, attention_kernel). A bool is
// "true"/"false", anything else its str(); a keyword outside that group is a TypeError, a bad value
// a cascade::Error.
void set_options(engine::AttentionOptions& o, const nb::kwargs& kw, bool placement);

// A vector handed to NumPy: the array owns the vector's memory.
template <typename T>
nb::object to_numpy(std::vector<T> v) {
  auto* owned = new std::vector<T>(std::move(v));
  nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<std::vector<T>*>(p); });
  return nb::ndarray<nb::numpy, T, nb::ndim<1>>(owned->data(), {owned->size()}, owner).cast();
}
// A tensor handed to NumPy as float32 of its shape; the array owns the tensor.
nb::object to_numpy(Tensor t);

nb::object to_python(const nlohmann::json& j);

// Thrown (without the GIL) when Python has a pending exception from a signal handler.
struct Interrupted {};
// Called without the GIL between steps of a long run.
void check_signals();
// Called without the GIL: whether a signal handler raised (the exception stays pending for
// run_released to raise once the engine has stopped).
bool signal_pending();

// Runs f with the GIL released; an Interrupted from it becomes the pending Python exception.
template <typename F>
auto run_released(F&& f) {
  try {
    nb::gil_scoped_release release;
    return f();
  } catch (const Interrupted&) {
    throw nb::python_error();
  }
}

// Raises a pending Python exception (e.g. KeyboardInterrupt from signal_pending), with the GIL held.
void raise_pending();

}  // namespace cascade::py
