// The shared helpers of common.h.
#include "common.h"

#include <nanobind/stl/string.h>

#include "core/error.h"

namespace cascade::py {

void set_options(engine::AttentionOptions& o, const nb::kwargs& kw, bool placement) {
  for (const auto& [key, value] : kw) {
    const std::string name = nb::cast<std::string>(key);
    const engine::OptionSpec* spec = engine::find_attention_option(name);
    if (!spec || spec->placement != placement) throw nb::type_error(("unexpected keyword argument '" + name + "'").c_str());
    std::string text;
    if (nb::isinstance<nb::bool_>(value)) text = nb::cast<bool>(value) ? "true" : "false";
    else text = nb::cast<std::string>(nb::str(value));
    engine::set_attention_option(o, name, text, name);
  }
}

nb::object to_numpy(Tensor t) {
  auto* owned = new Tensor(std::move(t));
  nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<Tensor*>(p); });
  std::vector<size_t> shape(owned->shape().begin(), owned->shape().end());
  return nb::ndarray<nb::numpy, float>(owned->data(), shape.size(), shape.data(), owner).cast();
}

nb::object to_python(const nlohmann::json& j) {
  using T = nlohmann::json::value_t;
  switch (j.type()) {
    case T::null: return nb::none();
    case T::boolean: return nb::bool_(j.get<bool>());
    case T::number_integer: return nb::int_(j.get<int64_t>());
    case T::number_unsigned: return nb::int_(j.get<uint64_t>());
    case T::number_float: return nb::float_(j.get<double>());
    case T::string: {
      const auto& s = j.get_ref<const std::string&>();
      return nb::str(s.data(), s.size());
    }
    case T::array: {
      nb::list l;
      for (const auto& e : j) l.append(to_python(e));
      return l;
    }
    case T::object: {
      nb::dict d;
      for (const auto& [k, v] : j.items()) d[nb::str(k.data(), k.size())] = to_python(v);
      return d;
    }
    default: fail("a JSON value of type ", j.type_name(), " has no Python form");
  }
}

void check_signals() {
  if (signal_pending()) throw Interrupted{};
}

bool signal_pending() {
  nb::gil_scoped_acquire gil;
  return PyErr_CheckSignals() != 0;
}

void raise_pending() {
  if (PyErr_Occurred()) throw nb::python_error();
}

}  // namespace cascade::py
