// A program that consumes an installed or subproject pyscope exactly as a
// user would: includes the umbrella header, links the core, runs Python on
// a native thread. It prints what tests/consumers/check asserts: the
// answer, pyscope's version, and which CPython the process runs (the
// version Python reports and the file the loader took libpython from).

#include <dlfcn.h>

#include <cstdio>
#include <string>
#include <thread>

#include "pyscope/pyscope.h"
#include "pyscope/version.h"

static std::string PythonVersion() PYSCOPE_REQUIRES_GIL {
  PyObject* value = pyscope::Eval("__import__('platform').python_version()");
  std::string version = PyUnicode_AsUTF8(value);
  Py_DECREF(value);
  return version;
}

int main() {
  pyscope::ScopedRuntime python;
  long answer = 0;
  std::string version;
  std::thread worker([&answer, &version] {
    pyscope::GILGuard gil;
    PyObject* value = pyscope::Eval("6 * 7");
    answer = PyLong_AsLong(value);
    Py_DECREF(value);
    version = PythonVersion();
  });
  worker.join();
  Dl_info info;
  const bool located = dladdr(Py_GetVersion(), &info) != 0;
  std::printf("consumer: %ld\n", answer);
  std::printf("pyscope_version=%s\n", PYSCOPE_VERSION);
  std::printf("python_version=%s\n", version.c_str());
  std::printf("libpython=%s\n", located ? info.dli_fname : "?");
  return answer == 42 && python.Finalize().ok() ? 0 : 1;
}
