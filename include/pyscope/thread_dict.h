// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// The per-thread state dictionary (PyThreadState_GetDict): a dict that
// belongs to the calling thread's thread state, for host code that keeps
// per-thread Python data (a cache, a connection, a context object) without
// a threading.local.
//
//   pyscope::GILGuard gil;
//   PyObject* mine = pyscope::ThreadStateDict();       // borrowed
//   PyDict_SetItemString(mine, "request_id", id);
//
// How long it lives: pyscope gives each OS thread one cached thread state
// per interpreter, reused by every guard of that thread, so the dictionary
// and what it holds survive from one GILGuard scope to the next on the same
// thread. It is freed with that thread state: when the thread exits, when
// the interpreter ends, or when the runtime finalizes. Each interpreter has
// its own (entering a sub-interpreter gives that interpreter's dictionary).
// A Python thread (threading.Thread) has the dictionary of its own thread
// state.

#ifndef PYSCOPE_THREAD_DICT_H_
#define PYSCOPE_THREAD_DICT_H_

#include "absl/status/statusor.h"
#include "pyscope/annotations.h"
#include "pyscope/detail/compat.h"
#include "pyscope/detail/export.h"

namespace pyscope {

// The calling thread's state dictionary in the interpreter it is attached
// to (a borrowed reference; valid while the thread state lives, see above).
// Requires the GIL; without it, throws pyscope::Error (kFailedPrecondition)
// without touching CPython. Throws pyscope::Error (kResourceExhausted) when
// CPython cannot allocate the dictionary.
PYSCOPE_API PyObject* ThreadStateDict() PYSCOPE_REQUIRES_GIL;

// Like ThreadStateDict, returning the error as a status.
PYSCOPE_API absl::StatusOr<PyObject*> TryThreadStateDict() PYSCOPE_REQUIRES_GIL;

}  // namespace pyscope

#endif  // PYSCOPE_THREAD_DICT_H_
