// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Forwarding Ctrl-C into Python: KeyboardInterrupt in the main thread of the
// main interpreter (InterruptMainThread), or in the Python code that one
// scope on any thread runs (InterruptToken + InterruptScope).
//
//   // The host owns SIGINT (Python's handlers are off by default):
//   void OnSigint(int) { pyscope::InterruptMainThread(); }
//
//   // A worker's computation, stoppable from the host's Ctrl-C handling:
//   pyscope::InterruptToken stop;
//   std::thread worker([stop] {
//     pyscope::GILGuard gil;
//     pyscope::InterruptScope interruptible(stop);
//     pyscope::TryExec("long_computation()");  // KeyboardInterrupt
//   });
//   ...
//   stop.Interrupt();
//
// Both raise KeyboardInterrupt where the Python code is, at its next
// bytecode boundary, as Ctrl-C does in the python program; the code's
// `except` and `finally` blocks run. A blocking call (time.sleep, a socket
// read) in the main thread returns early only when a signal interrupts the
// system call, which a Ctrl-C delivered to the main thread does (the
// host's SIGINT handler running there); on other threads it sees the
// interrupt when the call returns.

#ifndef PYSCOPE_INTERRUPT_H_
#define PYSCOPE_INTERRUPT_H_

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "pyscope/annotations.h"
#include "pyscope/detail/export.h"
#include "pyscope/detail/stack_only.h"

namespace pyscope {

// Makes the main thread of the main interpreter raise KeyboardInterrupt the
// next time it runs Python code (or calls PyErr_CheckSignals), whether or
// not Python's own signal handlers are installed. If Python code installed a
// SIGINT handler (signal.signal), that handler is called instead, as for a
// real Ctrl-C. Call it from any thread (GIL not needed), or from the host's
// SIGINT handler: on the main thread, where Linux delivers a Ctrl-C to a
// process whose main thread does not block SIGINT, it only records the
// signal (async-signal-safe); on another thread it also wakes the main
// thread's eval loop through a helper thread that asks for the GIL once
// (CPython 3.12 and 3.13 would not look at a signal simulated off the main
// thread while it runs a busy loop). That helper starts at the first such
// call, which is not async-signal-safe: from a signal handler that may run
// on another thread, call InterruptMainThread once outside it first, or
// handle signals on a dedicated thread (sigwait) and call it there.
// Returns false (and does nothing) when no pyscope runtime is running or it
// was adopted.
//
// How, with Python's handlers off: at initialization pyscope registers a
// Python-level handler for one otherwise unused real-time signal whose
// disposition it leaves (and puts back) at the default, and this function
// simulates that signal (PyErr_SetInterruptEx; on 3.9 the handler CPython
// would have run). The process's signal dispositions do not change.
PYSCOPE_API bool InterruptMainThread() noexcept;

// The real-time signal number InterruptMainThread simulates (0 when none
// is set up). Python code sees a handler for it in signal.getsignal().
PYSCOPE_API int InterruptSignal() noexcept;

namespace detail {
struct InterruptSlot;
}  // namespace detail

// Names the Python code one InterruptScope runs, so that another thread can
// interrupt it. Copyable (copies name the same scope slot); thread-safe.
class PYSCOPE_API InterruptToken {
 public:
  InterruptToken();

  // Raises KeyboardInterrupt (PyThreadState_SetAsyncExc) in the thread
  // inside this token's InterruptScope, at its next bytecode boundary. From
  // any thread, with or without a GIL. kFailedPrecondition when no scope is
  // active for the token (not yet, or already left: the interrupt is not
  // kept for later); the attachment's status (see InterpreterView) when the
  // scope's interpreter cannot be entered.
  absl::Status Interrupt() const;

  // Whether a scope is active for the token now.
  bool active() const;

 private:
  friend class InterruptScope;
  std::shared_ptr<detail::InterruptSlot> slot_;
};

// Makes the Python code the calling thread runs, for the scope, the target
// of `token.Interrupt()`. A KeyboardInterrupt still pending when the scope
// ends is cancelled, so it never escapes into unrelated code. One active
// scope per token (a second one is kAlreadyExists in status()).
//
// Stack-only. Precondition: the calling thread holds the GIL (inside a
// GILGuard scope, ending before it).
class [[nodiscard]] InterruptScope {
  PYSCOPE_INTERNAL_STACK_ONLY(InterruptScope)

 public:
  [[nodiscard]] PYSCOPE_API explicit InterruptScope(const InterruptToken& token)
      PYSCOPE_REQUIRES_GIL;
  PYSCOPE_API ~InterruptScope();

  bool ok() const noexcept { return status_.ok(); }
  const absl::Status& status() const noexcept { return status_; }

 private:
  std::shared_ptr<detail::InterruptSlot> slot_;
  uint64_t serial_ = 0;
  absl::Status status_;
};

}  // namespace pyscope

#endif  // PYSCOPE_INTERRUPT_H_
