// A program that consumes an installed or subproject pyscope exactly as a
// user would: includes the umbrella header, links the core, runs Python on
// a native thread.

#include <cstdio>
#include <thread>

#include "pyscope/pyscope.h"

int main() {
  pyscope::ScopedRuntime python;
  long answer = 0;
  std::thread worker([&answer] {
    pyscope::GILGuard gil;
    PyObject* value = pyscope::Eval("6 * 7");
    answer = PyLong_AsLong(value);
    Py_DECREF(value);
  });
  worker.join();
  std::printf("consumer: %ld\n", answer);
  return answer == 42 && python.Finalize().ok() ? 0 : 1;
}
