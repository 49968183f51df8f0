// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0

#include "pyscope/exec.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "attach.h"
#include "pyscope/error.h"
#include "thread_state_cache.h"

namespace pyscope {
namespace {

// These are not hot paths: each checks that the calling thread holds the
// GIL, so that a call without a guard (or inside a release pyscope did not
// make) is an error instead of a crash inside CPython.
absl::Status CheckGil(const char* function) {
  if (detail::AttachedHere(detail::ThisRecord()) != nullptr) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "pyscope::", function,
      " called on a thread that does not hold the GIL: open a "
      "pyscope::GILGuard first (and not inside AllowThreads, a raw "
      "Py_BEGIN_ALLOW_THREADS region or a pybind11 gil_scoped_release)"));
}

PyObject* RunInMain(std::string_view code, int start) PYSCOPE_REQUIRES_GIL {
  PyObject* main_module = PyImport_AddModule("__main__");  // borrowed
  if (main_module == nullptr) return nullptr;
  PyObject* globals = PyModule_GetDict(main_module);  // borrowed
  const std::string source(code);
  return PyRun_StringFlags(source.c_str(), start, globals, globals, nullptr);
}

}  // namespace

void Exec(std::string_view code) {
  if (absl::Status gil = CheckGil("Exec"); !gil.ok()) throw Error(gil);
  PyObject* result = RunInMain(code, Py_file_input);
  if (result == nullptr) throw PythonError::FetchAndClear();
  Py_DECREF(result);
}

absl::Status TryExec(std::string_view code) {
  if (absl::Status gil = CheckGil("TryExec"); !gil.ok()) return gil;
  PyObject* result = RunInMain(code, Py_file_input);
  if (result != nullptr) {
    Py_DECREF(result);
    return absl::OkStatus();
  }
  PythonError error = PythonError::FetchAndClear();
  return absl::UnknownError(
      absl::StrCat(error.status().message(), "\n", error.traceback()));
}

PyObject* Eval(std::string_view expression) {
  if (absl::Status gil = CheckGil("Eval"); !gil.ok()) throw Error(gil);
  PyObject* result = RunInMain(expression, Py_eval_input);
  if (result == nullptr) throw PythonError::FetchAndClear();
  return result;
}

}  // namespace pyscope
