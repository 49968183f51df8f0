// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// AtInterpreterExit (pyscope/exit_hooks.h): each hook becomes a built-in
// function object of the target interpreter, bound to a capsule that owns
// the C++ callable, and is registered with that interpreter's atexit.

#include "pyscope/exit_hooks.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "attach.h"
#include "caught_exception.h"
#include "misuse.h"
#include "pyscope/error.h"
#include "pyscope/sub_interpreter.h"
#include "thread_state_cache.h"

namespace pyscope {
namespace {

constexpr char kCapsuleName[] = "pyscope.exit_hook";

struct Hook {
  absl::AnyInvocable<void()> run;
  SourceLocation where;
};

// A capsule destructor: CPython calls it with the GIL held.
void DestroyHook(PyObject* capsule) PYSCOPE_REQUIRES_GIL {
  delete static_cast<Hook*>(PyCapsule_GetPointer(capsule, kCapsuleName));
}

// The function atexit calls: runs the hook once; a C++ exception is raised
// as RuntimeError for atexit to report.
PyObject* RunHook(PyObject* capsule, PyObject*) PYSCOPE_REQUIRES_GIL {
  auto* hook = static_cast<Hook*>(PyCapsule_GetPointer(capsule, kCapsuleName));
  if (hook == nullptr) return nullptr;
  if (!hook->run) Py_RETURN_NONE;  // already ran (atexit._run_exitfuncs)
  absl::AnyInvocable<void()> run = std::move(hook->run);
  hook->run = nullptr;
  try {
    run();
  } catch (...) {
    detail::RaiseCaughtException(absl::StrCat(
        "the interpreter exit hook registered at ", detail::Site(hook->where)));
  }
  if (PyErr_Occurred() != nullptr) return nullptr;
  Py_RETURN_NONE;
}

PyMethodDef kRunHookDef = {
    "pyscope_exit_hook", reinterpret_cast<PyCFunction>(&RunHook), METH_NOARGS,
    "An exit hook registered by pyscope::AtInterpreterExit"};

absl::Status Register(absl::AnyInvocable<void()> hook,
                      const SourceLocation& where) PYSCOPE_REQUIRES_GIL {
  auto* owned = new Hook{std::move(hook), where};
  PyObject* capsule = PyCapsule_New(owned, kCapsuleName, &DestroyHook);
  if (capsule == nullptr) {
    delete owned;
    return PythonError::FetchAndClear().status();
  }
  PyObject* function = PyCFunction_New(&kRunHookDef, capsule);
  Py_DECREF(capsule);
  if (function == nullptr) return PythonError::FetchAndClear().status();
  PyObject* atexit = PyImport_ImportModule("atexit");
  PyObject* result = atexit == nullptr ? nullptr
                                       : PyObject_CallMethod(atexit, "register",
                                                             "O", function);
  Py_XDECREF(atexit);
  Py_DECREF(function);
  if (result == nullptr) return PythonError::FetchAndClear().status();
  Py_DECREF(result);
  return absl::OkStatus();
}

}  // namespace

absl::Status AtInterpreterExit(absl::AnyInvocable<void()> hook,
                               SourceLocation where) {
  if (detail::AttachedHere(detail::ThisRecord()) == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "pyscope::AtInterpreterExit called on a thread that does not hold "
        "the GIL (at ",
        detail::Site(where), "): open a pyscope::GILGuard first"));
  }
  return Register(std::move(hook), where);
}

absl::Status AtInterpreterExit(SubInterpreter& interpreter,
                               absl::AnyInvocable<void()> hook,
                               SourceLocation where) {
  GILGuard gil(interpreter, std::nothrow, where);
  if (!gil.ok()) return gil.status();
  return Register(std::move(hook), where);
}

}  // namespace pyscope
