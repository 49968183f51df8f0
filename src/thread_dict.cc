// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0

#include "pyscope/thread_dict.h"

#include "attach.h"
#include "pyscope/error.h"
#include "thread_state_cache.h"

namespace pyscope {

absl::StatusOr<PyObject*> TryThreadStateDict() {
  if (detail::AttachedHere(detail::ThisRecord()) == nullptr) {
    return absl::FailedPreconditionError(
        "pyscope::ThreadStateDict called on a thread that does not hold the "
        "GIL: open a pyscope::GILGuard first");
  }
  // Null without an exception when CPython could not allocate it.
  PyObject* dict = PyThreadState_GetDict();
  if (dict == nullptr) {
    if (PyErr_Occurred() != nullptr) PyErr_Clear();
    return absl::ResourceExhaustedError(
        "pyscope: PyThreadState_GetDict could not allocate the dictionary");
  }
  return dict;
}

PyObject* ThreadStateDict() {
  absl::StatusOr<PyObject*> dict = TryThreadStateDict();
  if (!dict.ok()) throw Error(dict.status());
  return *dict;
}

}  // namespace pyscope
