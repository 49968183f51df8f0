// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Work posted from any thread to run on the main thread of the main
// interpreter (Py_AddPendingCall), with owned closures instead of a
// function pointer and a void*.
//
//   // On a worker thread, without the GIL:
//   absl::StatusOr<std::future<long>> answer =
//       pyscope::CallOnMainThread([]() PYSCOPE_REQUIRES_GIL {
//         return host_api::MainThreadOnlyQuery();   // e.g. a UI toolkit
//       });
//   if (answer.ok()) long value = answer->get();  // once the main thread ran
//   it
//
// "The main thread" is CPython's: the thread that initialized the runtime.
// CPython runs pending calls there between bytecodes of Python code it is
// running (main interpreter only), and when the host calls
// RunPendingCalls() — for a host whose main thread runs its own event loop
// and not Python. A call never runs on another thread, and never while the
// main thread is blocked in C++ without running Python.
//
// When the runtime finalizes (ScopedRuntime::Finalize, after the exit
// callbacks), calls that have not run are destroyed without running, with
// the GIL held, and counted (MainThreadCallStats::discarded); the future of
// such a call holds pyscope::Error (kCancelled).

#ifndef PYSCOPE_MAIN_THREAD_H_
#define PYSCOPE_MAIN_THREAD_H_

#include <cstdint>
#include <exception>
#include <future>
#include <memory>
#include <type_traits>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pyscope/annotations.h"
#include "pyscope/detail/compat.h"
#include "pyscope/detail/export.h"
#include "pyscope/error.h"
#include "pyscope/source_location.h"

namespace pyscope {

namespace detail {

// One posted call: `run` on the main thread, or `discard` (with the reason)
// if it never runs. Both are called with the GIL held, once, and the call is
// destroyed right after, also with the GIL held.
struct MainThreadCall {
  absl::AnyInvocable<bool()> run;
  absl::AnyInvocable<void(const absl::Status&)> discard;
};

// `run` returns false when the call raised (for the counts).
PYSCOPE_API absl::Status PostMainThreadCall(MainThreadCall call,
                                            const SourceLocation& where);

}  // namespace detail

// Posts `fn` to run on the main thread with the GIL held (see the file
// comment for when). Thread-safe; needs no GIL (before CPython 3.12 it
// takes the GIL for a moment, because Py_AddPendingCall picks its queue
// from the current thread state there).
//
// Ownership: `fn` is moved in and destroyed after it ran, or when it is
// discarded at finalization, in both cases with the GIL held. If posting
// fails, `fn` is destroyed on the calling thread before the call returns.
//
// Errors from `fn` are reported, never lost and never raised into the
// Python code the main thread was running: a C++ exception, or a Python
// exception `fn` leaves set, is passed to sys.unraisablehook (printed to
// stderr by default: "Exception ignored in: ...") and counted in
// MainThreadCallStats::failed.
//
// Returns kFailedPrecondition when no runtime was started; kUnavailable
// when it is finalizing or finalized;
// kResourceExhausted when CPython's pending-call queue is full (it holds a
// few dozen calls; the main thread has not run Python code for a while);
// kFailedPrecondition before 3.12 on a thread attached to a sub-interpreter
// pyscope did not set up.
// `where` (the caller's position by default) names the call in those
// reports.
PYSCOPE_API absl::Status PostToMainThread(
    absl::AnyInvocable<void()> fn,
    SourceLocation where = SourceLocation::Current());

// Like PostToMainThread, and returns a future for `fn`'s result (or its
// exception: a C++ exception as thrown, a Python exception `fn` left set as
// pyscope::PythonError; a call discarded at finalization as pyscope::Error
// with kCancelled). Waiting on the future from the main thread itself,
// without running Python, waits forever: only wait from other threads.
template <typename Fn>
auto CallOnMainThread(Fn&& fn, SourceLocation where = SourceLocation::Current())
    -> absl::StatusOr<std::future<std::invoke_result_t<std::decay_t<Fn>&>>> {
  using Result = std::invoke_result_t<std::decay_t<Fn>&>;
  auto promise = std::make_shared<std::promise<Result>>();
  std::future<Result> future = promise->get_future();
  detail::MainThreadCall call;
  call.run = [promise, fn = std::forward<Fn>(fn)]() mutable {
    PYSCOPE_ASSERT_GIL_HELD();  // pending calls run with the GIL held
    try {
      if constexpr (std::is_void_v<Result>) {
        fn();
        if (PyErr_Occurred() != nullptr) ThrowIfPythonError();
        promise->set_value();
      } else {
        Result result = fn();
        if (PyErr_Occurred() != nullptr) ThrowIfPythonError();
        promise->set_value(std::move(result));
      }
      return true;
    } catch (...) {
      promise->set_exception(std::current_exception());
      return false;
    }
  };
  call.discard = [promise](const absl::Status& why) {
    promise->set_exception(std::make_exception_ptr(Error(why)));
  };
  absl::Status posted = detail::PostMainThreadCall(std::move(call), where);
  if (!posted.ok()) return posted;
  return future;
}

// Runs the calls pending for the main thread now (Py_MakePendingCalls; also
// runs Python signal handlers). For a host whose main thread runs its own
// event loop: call it from there with the GIL held. On another thread it
// does nothing. Returns OK, or a PythonError status when a signal handler
// raised (e.g. KeyboardInterrupt). Requires the GIL.
PYSCOPE_API absl::Status RunPendingCalls() PYSCOPE_REQUIRES_GIL;

// Counts since the process started, over every runtime. Thread-safe.
struct MainThreadCallStats {
  uint64_t posted = 0;     // accepted by PostToMainThread / CallOnMainThread
  uint64_t ran = 0;        // ran on the main thread (including failed)
  uint64_t failed = 0;     // ran and raised (reported as described above)
  uint64_t discarded = 0;  // destroyed unrun at finalization (or in a fork
                           // child, where the posting threads do not exist)
  uint64_t pending = 0;    // posted and not yet run or discarded
};
PYSCOPE_API MainThreadCallStats GetMainThreadCallStats();

}  // namespace pyscope

#endif  // PYSCOPE_MAIN_THREAD_H_
