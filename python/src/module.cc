// cascade._cascade: the extension module. The public API, its argument conversion and its
// docstrings are in python/cascade/__init__.py; this module is the engine's side of it. Every
// cascade::Error (bad input: a file, an option, a token id) becomes cascade.CascadeError, a
// ValueError carrying the engine's message.
#include "common.h"
#include "core/error.h"

namespace cascade::py {
void bind_model(nb::module_& m);
void bind_select(nb::module_& m);
void bind_study(nb::module_& m);
void bind_cli(nb::module_& m);
}  // namespace cascade::py

NB_MODULE(_cascade, m) {
  namespace nb = cascade::py::nb;
  nb::exception<cascade::Error>(m, "CascadeError", PyExc_ValueError);
  cascade::py::bind_model(m);
  cascade::py::bind_select(m);
  cascade::py::bind_study(m);
  cascade::py::bind_cli(m);
}
