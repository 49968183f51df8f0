// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Per-interpreter exit hooks: C++ callables that run when one interpreter
// (the main one, or a sub-interpreter) ends, while it still works.
//
//   pyscope::GILGuard gil(plugin);
//   pyscope::AtInterpreterExit([]() PYSCOPE_REQUIRES_GIL {
//     pyscope::Exec("plugin.save_state()");   // Python works here
//   });
//
// When and in which order, the same on CPython 3.9-3.13: a hook is
// registered with the interpreter's own `atexit` module, so it runs when
// CPython runs that interpreter's atexit functions — in Py_FinalizeEx for
// the main interpreter (after ScopedRuntime's exit callbacks and after
// non-daemon Python threads were joined), in Py_EndInterpreter for a
// sub-interpreter (SubInterpreter::End, or the runtime's finalization
// ending it; after its Python threads were joined) — last registered,
// first run, interleaved with the atexit functions Python code registered.
// It runs on the thread that ends the interpreter, attached to it, with the
// GIL held.
//
// Why not PyUnstable_AtExit (CPython 3.13): its callbacks run only after
// the interpreter's modules were finalized (calling into Python there
// crashes), and 3.13.0 keeps only the first and the last of the callbacks
// registered (of three, the second never runs), so it can give neither
// "while it still works" nor one order on every version.
//
// A hook that throws, or leaves a Python exception set, is reported as any
// failing atexit function is (to stderr, or sys.unraisablehook from 3.10;
// a C++ exception as RuntimeError naming where the hook was registered)
// and the other hooks still run. Python code
// that clears atexit (atexit._clear(), or unregisters the function) drops
// the hook, which is then destroyed without running. A hook is destroyed
// with the GIL held, after it ran.

#ifndef PYSCOPE_EXIT_HOOKS_H_
#define PYSCOPE_EXIT_HOOKS_H_

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "pyscope/annotations.h"
#include "pyscope/detail/export.h"
#include "pyscope/source_location.h"

namespace pyscope {

class SubInterpreter;

// Registers `hook` for the interpreter the calling thread is attached to.
// Requires the GIL (without it: kFailedPrecondition, nothing registered).
// A Python error registering it (atexit cannot be imported) is returned as
// a status.
PYSCOPE_API absl::Status AtInterpreterExit(
    absl::AnyInvocable<void()> hook,
    SourceLocation where = SourceLocation::Current()) PYSCOPE_REQUIRES_GIL;

// Registers `hook` for `interpreter`, entering it on the calling thread for
// the registration (any thread, with or without a GIL). Errors: those of
// GILGuard(interpreter) (kFailedPrecondition once it has ended), and those
// above.
PYSCOPE_API absl::Status AtInterpreterExit(
    SubInterpreter& interpreter, absl::AnyInvocable<void()> hook,
    SourceLocation where = SourceLocation::Current());

}  // namespace pyscope

#endif  // PYSCOPE_EXIT_HOOKS_H_
