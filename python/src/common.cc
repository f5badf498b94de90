// The shared helpers of common.h. AttentionSpec parses exactly what the CLI's attention flags parse
// (tools/cli/attention_flags.cc), so an option means the same from Python and from the command line.
#include "common.h"

#include "core/error.h"

namespace cascade::py {

AttentionSpec::AttentionSpec(const std::string& attention, const std::string& select, double tau,
                             const std::string& rule, const std::string& similarity, const std::string& queries,
                             bool proportional) {
  CASCADE_CHECK(attention == "full" || attention == "ada", "unknown attention '", attention,
                "' (expected full or ada)");
  CASCADE_CHECK(queries == "reps" || queries == "all", "unknown queries '", queries, "' (expected reps or all)");
  ada = attention == "ada";
  options.select.tau = tau;
  options.select.rule = select::parse_rule(rule);
  options.select.similarity = select::parse_similarity(similarity);
  options.mode = select::parse_mode(select);
  options.queries = queries == "all" ? AdaQueries::all : AdaQueries::reps;
  options.proportional = proportional;
  (void)AdaAttentionFactory(options);  // validates the options even for exact attention, as the CLI does
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
  nb::gil_scoped_acquire gil;
  if (PyErr_CheckSignals() != 0) throw Interrupted{};
}

}  // namespace cascade::py
