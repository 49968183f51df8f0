// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Running Python source from C++: Exec / TryExec (statements) and Eval (an
// expression), in the __main__ namespace of the interpreter the calling
// thread is attached to.
//
//   pyscope::GILGuard gil;
//   pyscope::Exec("import math\nroot = math.sqrt(2)");
//   PyObject* root = pyscope::Eval("root");   // new reference
//
// Each requires the GIL (a GILGuard in scope); without it the call is a
// compile error under clang -Wthread-safety and, at run time, a
// pyscope::Error instead of a crash. A thread inside AllowThreads, a raw
// Py_BEGIN_ALLOW_THREADS region or a pybind11 gil_scoped_release does not
// hold the GIL either.

#ifndef PYSCOPE_EXEC_H_
#define PYSCOPE_EXEC_H_

#include <string_view>

#include "absl/status/status.h"
#include "pyscope/annotations.h"
#include "pyscope/detail/compat.h"
#include "pyscope/detail/export.h"

namespace pyscope {

// Executes `code` as a module body (like `exec`, Py_file_input) in the
// `__main__` namespace of the interpreter the calling thread is attached to,
// with `__main__.__dict__` as globals and locals. A Python exception
// (including SystemExit: the process never exits here) becomes a
// PythonError. Requires the GIL: on a thread that does not hold it, throws
// pyscope::Error (kFailedPrecondition) without touching CPython.
PYSCOPE_API void Exec(std::string_view code) PYSCOPE_REQUIRES_GIL;

// Like Exec, but returns the error as a status: OK, or kUnknown with
// "TypeName: message", a newline and the traceback. Requires the GIL
// (without it: kFailedPrecondition).
PYSCOPE_API absl::Status TryExec(std::string_view code) PYSCOPE_REQUIRES_GIL;

// Evaluates the expression `expression` (Py_eval_input) in `__main__` and
// returns a new reference to the result (the caller must Py_DECREF it).
// Throws PythonError. Requires the GIL (without it: pyscope::Error,
// kFailedPrecondition).
PYSCOPE_API PyObject* Eval(std::string_view expression) PYSCOPE_REQUIRES_GIL;

}  // namespace pyscope

#endif  // PYSCOPE_EXEC_H_
