// with_pybind11: pybind11 for the objects, pyscope for the runtime and the
// threads.
//
// Problem solved: a host binds a C++ type with pybind11 and lets a pool of
// native threads run Python that uses it. pybind11 alone leaves the
// hazards to discipline: the main thread must remember to release the GIL
// after scoped_interpreter starts, every worker must pair its GIL calls, and
// shutting down while a worker still runs Python hangs or kills that
// thread. Here pyscope owns the runtime (no ambient GIL, a drained
// shutdown) and each thread's GIL scope; pybind11 provides py::object,
// casts and the bound type.

#include <pybind11/embed.h>

#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pyscope/pyscope.h"

namespace py = pybind11;

// The host's type, shared by every thread (so it locks).
class Inventory {
 public:
  void Add(const std::string& item, long count) {
    std::lock_guard<std::mutex> lock(mu_);
    total_ += count;
    last_ = item;
  }
  long total() const {
    std::lock_guard<std::mutex> lock(mu_);
    return total_;
  }

 private:
  mutable std::mutex mu_;
  long total_ = 0;
  std::string last_;
};

// A built-in module: registered before the runtime starts.
PYBIND11_EMBEDDED_MODULE(inventory, m) {
  py::class_<Inventory>(m, "Inventory")
      .def("add", &Inventory::Add,
           // The C++ side locks its own mutex: let other threads run Python
           // meanwhile.
           py::call_guard<py::gil_scoped_release>())
      .def_property_readonly("total", &Inventory::total);
}

int main() {
  pyscope::ScopedRuntime python;  // isolated; the GIL is released here
  Inventory stock;

  {
    pyscope::GILGuard gil;
    // The Python side of the program: a function the workers call.
    py::exec(R"py(
import inventory
def restock(store, worker):
    for n in range(1, 11):
        store.add(f"item-{worker}-{n}", n)
)py");
  }

  std::vector<std::thread> workers;
  for (int worker = 0; worker < 4; ++worker) {
    workers.emplace_back([&stock, worker] {
      pyscope::GILGuard gil;  // attach this native thread, hold the GIL
      py::object restock = py::globals()["restock"];
      // py::cast with `reference`: Python sees the host's object, not a copy.
      restock(py::cast(&stock, py::return_value_policy::reference), worker);
    });
  }
  for (std::thread& worker : workers) worker.join();

  long from_python = 0;
  {
    pyscope::GILGuard gil;
    py::object store = py::cast(&stock, py::return_value_policy::reference);
    from_python = store.attr("total").cast<long>();
  }
  std::printf("with_pybind11: total %ld (C++ %ld)\n", from_python,
              stock.total());
  absl::Status finalized = python.Finalize();  // drain, then Py_FinalizeEx
  return finalized.ok() && from_python == 4 * 55 ? 0 : 1;
}
