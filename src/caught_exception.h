// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// C++ callables that CPython calls through pyscope (trace functions, exit
// hooks, calls posted to the main thread) must not let an exception cross
// CPython's C frames: the one place that turns it into a Python exception.

#ifndef PYSCOPE_SRC_CAUGHT_EXCEPTION_H_
#define PYSCOPE_SRC_CAUGHT_EXCEPTION_H_

#include "absl/strings/string_view.h"
#include "pyscope/annotations.h"

namespace pyscope::detail {

// Called inside a `catch (...)` block: raises the C++ exception being
// handled as a Python exception of the attached thread state. A
// pyscope::PythonError (a Python exception captured as text by Exec and
// friends) becomes RuntimeError carrying its type name, message and
// traceback, replacing any exception already set. Any other exception
// becomes RuntimeError "C++ exception in <callable>: <what()>", unless a
// Python exception is already set (the callable raised it through the C API
// before throwing), which is kept. `callable` names what threw, e.g. "a
// call posted to the main thread".
void RaiseCaughtException(absl::string_view callable) PYSCOPE_REQUIRES_GIL;

}  // namespace pyscope::detail

#endif  // PYSCOPE_SRC_CAUGHT_EXCEPTION_H_
