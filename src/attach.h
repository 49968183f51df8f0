// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// What the attach paths (attach.cc) share with the rest of the core.

#ifndef PYSCOPE_SRC_ATTACH_H_
#define PYSCOPE_SRC_ATTACH_H_

#include "thread_state_cache.h"

namespace pyscope::detail {

// Whether `tstate`, a result of compat::CurrentThreadStateUnchecked(), is
// attached on the calling thread. From 3.12 that pointer is thread-local;
// before, it is the process-wide GIL holder's, so it is compared with the
// thread states this thread is known to use, then with where it was
// created.
bool IsAttachedHere(Record& record, PyThreadState* tstate);

// The thread state attached on the calling thread, or null.
inline PyThreadState* AttachedHere(Record& record) {
  PyThreadState* current = compat::CurrentThreadStateUnchecked();
  return IsAttachedHere(record, current) ? current : nullptr;
}

}  // namespace pyscope::detail

#endif  // PYSCOPE_SRC_ATTACH_H_
