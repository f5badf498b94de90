// What the binding files share: the attention options object every model call takes, engine
// buffers handed to NumPy without a copy, JSON to Python, and Ctrl-C while the GIL is released.
//
// Design: the engine runs with the GIL released (model calls take seconds); its long loops (tokens,
// study windows) call check_signals() between steps, which takes the GIL just long enough to run
// Python's signal handlers. A pending KeyboardInterrupt unwinds the engine as Interrupted and is
// raised in Python by run_released().
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nlohmann/json.hpp>

#include "attention/ada_attention.h"
#include "core/tensor.h"

namespace cascade::py {

namespace nb = nanobind;

// Ids and features as the engine reads them: host memory, row-major; the Python side converts.
using IdsIn = nb::ndarray<const int32_t, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
using FeaturesIn = nb::ndarray<const float, nb::ndim<2>, nb::c_contig, nb::device::cpu>;

// The CLI's attention flags as one validated object (cascade::Error on a bad value).
struct AttentionSpec {
  AttentionSpec(const std::string& attention, const std::string& select, double tau, const std::string& rule,
                const std::string& similarity, const std::string& queries, bool proportional);
  bool ada = false;  // false: exact attention
  AdaOptions options;
};

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

}  // namespace cascade::py
