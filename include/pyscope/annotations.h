// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// The GIL as a Clang thread-safety capability.
//
// pyscope models "this thread is attached to a Python interpreter and holds
// its GIL" as one capability, `pyscope::gil`. The guards acquire and release
// it (`GILGuard` acquires, `AllowThreads` releases for its scope), and code
// that touches Python says so with `PYSCOPE_REQUIRES_GIL`:
//
//   void AppendAnswer(PyObject* list) PYSCOPE_REQUIRES_GIL;
//
//   void Caller(PyObject* list) {
//     pyscope::GILGuard gil;   // without this line: a compile error under
//     AppendAnswer(list);      // clang++ -Wthread-safety -Werror
//   }
//
// The analysis is Clang's (`-Wthread-safety`); with GCC the annotations
// compile to nothing. The capability is a compile-time fiction: the object
// has no state and no cost. Which interpreter's GIL is held is a run-time
// fact that the guards track; the compile-time rule only says "some guard".
//
// On the free-threaded build (3.13t, 3.14t) there is no GIL, and
// `pyscope::gil` means what the C API requires there: the calling thread is
// attached (has a current thread state). The rules keep their meaning: a
// C API call still needs an attached thread, and AllowThreads still detaches
// (a stop-the-world pause, such as the garbage collector, waits for every
// attached thread). What the capability never promised is mutual exclusion:
// without a GIL, other attached threads run Python at the same time, so
// shared Python objects need their own synchronization
// (detail::compat::kGilExcludesOtherThreads says which build this is).

#ifndef PYSCOPE_ANNOTATIONS_H_
#define PYSCOPE_ANNOTATIONS_H_

#include "absl/base/thread_annotations.h"

#if defined(__clang__)
#define PYSCOPE_INTERNAL_CAPABILITY(x) __attribute__((capability(x)))
#else
#define PYSCOPE_INTERNAL_CAPABILITY(x)
#endif

namespace pyscope {

// The type of the `pyscope::gil` capability: "this thread is attached and
// holds a GIL", for Clang's -Wthread-safety analysis, whose diagnostics call
// it "GIL": "calling function 'F' requires holding GIL 'gil' exclusively".
// Not copyable.
class PYSCOPE_INTERNAL_CAPABILITY("GIL") GilCapability {
 public:
  constexpr GilCapability() = default;
  GilCapability(const GilCapability&) = delete;
  GilCapability& operator=(const GilCapability&) = delete;
};

// The single process-wide capability object. It carries no state; guards and
// annotations name it so that Clang can follow which scopes hold the GIL.
inline GilCapability gil;

}  // namespace pyscope

// Put on a function (declaration, after the parameter list) that touches
// Python objects or calls the CPython C API: callers must hold the GIL
// through a pyscope guard (or be annotated themselves). Calls made without a
// guard in scope, or inside an `AllowThreads` scope, are rejected by
// `clang++ -Wthread-safety`: "calling function 'F' requires holding GIL
// 'gil' exclusively".
#define PYSCOPE_REQUIRES_GIL ABSL_EXCLUSIVE_LOCKS_REQUIRED(::pyscope::gil)

// Put on a function that must be called *without* the GIL held by the
// calling scope (for example one that blocks, or one that takes a
// `GILGuard` of its own and should not be nested in another). Calling it
// while a guard is in scope is reported: "cannot call function 'F' while
// GIL 'gil' is held".
#define PYSCOPE_EXCLUDES_GIL ABSL_LOCKS_EXCLUDED(::pyscope::gil)

// For a function that is entered with the GIL held by a mechanism Clang
// cannot see (a callback invoked by CPython, a PyCFunction, a tp_* slot, a
// function called from Python): tells the analysis that the GIL is held from
// here to the end of the scope. It checks nothing at run time; prefer
// `GILGuard`, which is reentrant and costs one counter increment when the
// GIL is already held. In a function that also opens an `AllowThreads`,
// Clang reports "mutex 'gil' is still held at the end of function" (the
// capability re-acquired by ~AllowThreads is never released in its view);
// use a `GILGuard` there instead, which borrows the existing attachment and
// is checked at run time.
#define PYSCOPE_ASSERT_GIL_HELD() ::pyscope::internal_annotations::AssumeGil()

namespace pyscope::internal_annotations {
inline void AssumeGil() ABSL_ASSERT_EXCLUSIVE_LOCK(::pyscope::gil) {}
}  // namespace pyscope::internal_annotations

#endif  // PYSCOPE_ANNOTATIONS_H_
