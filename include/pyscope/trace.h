// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// ScopedTrace and ScopedProfile: a C++ callable as the trace or profile
// function (PyEval_SetTrace / PyEval_SetProfile) for a scope, and whatever
// was installed before (a C tracer, or Python's sys.settrace /
// sys.setprofile function) back when the scope ends.
//
//   int lines = 0;
//   {
//     pyscope::GILGuard gil;
//     pyscope::ScopedTrace trace([&](const pyscope::TraceEvent& event) {
//       if (event.kind() == pyscope::TraceEventKind::kLine) ++lines;
//     });
//     pyscope::Exec("total = sum(i for i in range(10))");
//   }                                    // the previous tracer is back
//
// ScopedTraceAllThreads / ScopedProfileAllThreads do the same for every
// thread state of the interpreter (PyEval_SetTraceAllThreads, CPython 3.12+;
// before 3.12 construction fails with kUnimplemented).
//
// All four are stack-only and [[nodiscard]]; construction requires the GIL.

#ifndef PYSCOPE_TRACE_H_
#define PYSCOPE_TRACE_H_

#include <cstdint>
#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "pyscope/annotations.h"
#include "pyscope/detail/compat.h"
#include "pyscope/detail/export.h"
#include "pyscope/detail/stack_only.h"
#include "pyscope/error.h"
#include "pyscope/source_location.h"

namespace pyscope {

// What happened, as CPython's PyTrace_* constants say.
enum class TraceEventKind {
  kCall,        // a Python function or module body starts (PyTrace_CALL)
  kException,   // an exception was raised in the frame (PyTrace_EXCEPTION)
  kLine,        // a new line is about to run (PyTrace_LINE; trace only)
  kReturn,      // the frame returns (PyTrace_RETURN; arg() is the value, or
                // null when it ends by an exception)
  kCCall,       // a C function is about to be called (PyTrace_C_CALL;
                // profile only; arg() is the function)
  kCException,  // that C function raised (PyTrace_C_EXCEPTION)
  kCReturn,     // that C function returned (PyTrace_C_RETURN)
  kOpcode,      // a new opcode (PyTrace_OPCODE; only for frames whose
                // f_trace_opcodes is set)
};

// "call", "line", "c_call", ...: the names sys.settrace/sys.setprofile use.
PYSCOPE_API const char* TraceEventName(TraceEventKind kind);

// One event, as passed to a trace or profile callable. Valid only during
// the call (it refers to the running frame); copy what you keep. Its
// accessors read the frame with the GIL held, which the callable always
// has.
class PYSCOPE_API TraceEvent {
 public:
  TraceEvent(TraceEventKind kind, PyFrameObject* frame, PyObject* arg)
      : kind_(kind), frame_(frame), arg_(arg) {}

  TraceEventKind kind() const { return kind_; }

  // The file of the frame's code (co_filename), e.g. "<string>" for code
  // run by Exec; "" if it cannot be read.
  std::string_view file() const;
  // The frame's current line number.
  int line() const;
  // The name of the frame's code (co_name): the function's name, "<module>"
  // for a module body.
  std::string_view function() const;
  // For kCCall / kCReturn / kCException: the called C function's name
  // (`__qualname__`, else `__name__`, else its repr); "" otherwise.
  std::string c_function() const;

  // CPython's `arg` for the event (borrowed; may be null): the return value
  // for kReturn, the (type, value, traceback) tuple for kException, the
  // function for the C events.
  PyObject* arg() const { return arg_; }
  // The raw frame (borrowed), for what the accessors above do not cover.
  PyFrameObject* frame() const { return frame_; }

 private:
  TraceEventKind kind_;
  PyFrameObject* frame_;
  PyObject* arg_;
};

// A trace or profile callable. It runs on the traced thread with the GIL
// held, for every event; keep it short. It may use the C API and run Python
// code (CPython does not trace the callable's own Python code).
//
// Errors: an exception the callable throws, or a Python exception it
// leaves set, becomes a Python exception raised at the traced point (a
// C++ exception is raised as RuntimeError carrying its what()); the
// callable stays installed.
using TraceFunction = absl::AnyInvocable<void(const TraceEvent&)>;

namespace detail {

struct TraceTarget;  // src/trace.cc

// What a trace scope keeps to undo its installation.
class PYSCOPE_API TraceInstallation {
 public:
  enum class Hook { kTrace, kProfile };
  enum class Threads { kCalling, kAll };

  TraceInstallation() = default;
  TraceInstallation(const TraceInstallation&) = delete;
  TraceInstallation& operator=(const TraceInstallation&) = delete;

  // Installs `function`; the status says why not.
  absl::Status Install(Hook hook, Threads threads, TraceFunction function,
                       const SourceLocation& where);
  // Restores what was installed before. Idempotent.
  void Remove() noexcept;

 private:
  struct Saved {
    PyThreadState* tstate;
    Py_tracefunc func;
    PyObject* obj;  // strong reference
  };
  Hook hook_ = Hook::kTrace;
  Threads threads_ = Threads::kCalling;
  PyObject* capsule_ = nullptr;  // owns the TraceTarget
  TraceTarget* target_ = nullptr;
  PyThreadState* tstate_ = nullptr;  // the installing thread's state
  std::vector<Saved> saved_;
  SourceLocation where_;
};

}  // namespace detail

// Installs a C++ callable as the calling thread's trace function
// (PyEval_SetTrace) for the scope, then restores the previous one exactly:
// a C tracer, a Python function installed with sys.settrace (it keeps
// tracing the frames it traced), or none. Nested scopes restore in reverse
// order. Events: kCall, kLine, kReturn, kException, kOpcode.
//
// Preconditions: the calling thread holds the GIL; the scope ends on the
// same thread, with the same thread state attached (as a guard's scope
// does). If the thread state is no longer attached when the scope ends
// (released by a raw call), the callable is disarmed (it does nothing from
// then on) and a diagnostic is written to stderr; nothing is restored.
//
// Errors: the throwing constructor throws pyscope::Error
// (kFailedPrecondition without the GIL); the std::nothrow form reports it
// through status() and installs nothing.
class [[nodiscard]] ScopedTrace {
  PYSCOPE_INTERNAL_STACK_ONLY(ScopedTrace)

 public:
  [[nodiscard]] explicit ScopedTrace(
      TraceFunction function,
      SourceLocation where = SourceLocation::Current()) PYSCOPE_REQUIRES_GIL {
    status_ =
        installation_.Install(detail::TraceInstallation::Hook::kTrace,
                              detail::TraceInstallation::Threads::kCalling,
                              std::move(function), where);
    if (!status_.ok()) throw Error(status_);
  }
  [[nodiscard]] ScopedTrace(TraceFunction function, const std::nothrow_t&,
                            SourceLocation where = SourceLocation::Current())
      PYSCOPE_REQUIRES_GIL {
    status_ =
        installation_.Install(detail::TraceInstallation::Hook::kTrace,
                              detail::TraceInstallation::Threads::kCalling,
                              std::move(function), where);
  }
  ~ScopedTrace() { installation_.Remove(); }

  bool ok() const noexcept { return status_.ok(); }
  const absl::Status& status() const noexcept { return status_; }

 private:
  detail::TraceInstallation installation_;
  absl::Status status_;
};

// Like ScopedTrace, as the profile function (PyEval_SetProfile; Python's
// sys.setprofile). Events: kCall, kReturn, kCCall, kCReturn, kCException
// (no line events).
class [[nodiscard]] ScopedProfile {
  PYSCOPE_INTERNAL_STACK_ONLY(ScopedProfile)

 public:
  [[nodiscard]] explicit ScopedProfile(
      TraceFunction function,
      SourceLocation where = SourceLocation::Current()) PYSCOPE_REQUIRES_GIL {
    status_ =
        installation_.Install(detail::TraceInstallation::Hook::kProfile,
                              detail::TraceInstallation::Threads::kCalling,
                              std::move(function), where);
    if (!status_.ok()) throw Error(status_);
  }
  [[nodiscard]] ScopedProfile(TraceFunction function, const std::nothrow_t&,
                              SourceLocation where = SourceLocation::Current())
      PYSCOPE_REQUIRES_GIL {
    status_ =
        installation_.Install(detail::TraceInstallation::Hook::kProfile,
                              detail::TraceInstallation::Threads::kCalling,
                              std::move(function), where);
  }
  ~ScopedProfile() { installation_.Remove(); }

  bool ok() const noexcept { return status_.ok(); }
  const absl::Status& status() const noexcept { return status_; }

 private:
  detail::TraceInstallation installation_;
  absl::Status status_;
};

// Installs the callable as the trace function of every thread state of the
// calling thread's interpreter (PyEval_SetTraceAllThreads) for the scope.
// The callable runs on each traced thread, so it must be thread-safe (the
// GIL serializes it within one interpreter). Thread states created during
// the scope are not traced (CPython applies the call to the existing ones).
//
// At scope end every thread state that still has this callable gets back
// the function it had before. Because CPython can only set one function for
// all threads at once, construction requires that the thread states agree
// on what they have before (typically nothing, or one function installed
// with threading.settrace_all_threads); otherwise it fails with
// kFailedPrecondition and installs nothing.
//
// Errors: kUnimplemented before CPython 3.12 (checked before CPython is
// called); kFailedPrecondition without the GIL or as described above.
class [[nodiscard]] ScopedTraceAllThreads {
  PYSCOPE_INTERNAL_STACK_ONLY(ScopedTraceAllThreads)

 public:
  [[nodiscard]] explicit ScopedTraceAllThreads(
      TraceFunction function,
      SourceLocation where = SourceLocation::Current()) PYSCOPE_REQUIRES_GIL {
    status_ = installation_.Install(detail::TraceInstallation::Hook::kTrace,
                                    detail::TraceInstallation::Threads::kAll,
                                    std::move(function), where);
    if (!status_.ok()) throw Error(status_);
  }
  [[nodiscard]] ScopedTraceAllThreads(
      TraceFunction function, const std::nothrow_t&,
      SourceLocation where = SourceLocation::Current()) PYSCOPE_REQUIRES_GIL {
    status_ = installation_.Install(detail::TraceInstallation::Hook::kTrace,
                                    detail::TraceInstallation::Threads::kAll,
                                    std::move(function), where);
  }
  ~ScopedTraceAllThreads() { installation_.Remove(); }

  bool ok() const noexcept { return status_.ok(); }
  const absl::Status& status() const noexcept { return status_; }

 private:
  detail::TraceInstallation installation_;
  absl::Status status_;
};

// ScopedTraceAllThreads for the profile function
// (PyEval_SetProfileAllThreads).
class [[nodiscard]] ScopedProfileAllThreads {
  PYSCOPE_INTERNAL_STACK_ONLY(ScopedProfileAllThreads)

 public:
  [[nodiscard]] explicit ScopedProfileAllThreads(
      TraceFunction function,
      SourceLocation where = SourceLocation::Current()) PYSCOPE_REQUIRES_GIL {
    status_ = installation_.Install(detail::TraceInstallation::Hook::kProfile,
                                    detail::TraceInstallation::Threads::kAll,
                                    std::move(function), where);
    if (!status_.ok()) throw Error(status_);
  }
  [[nodiscard]] ScopedProfileAllThreads(
      TraceFunction function, const std::nothrow_t&,
      SourceLocation where = SourceLocation::Current()) PYSCOPE_REQUIRES_GIL {
    status_ = installation_.Install(detail::TraceInstallation::Hook::kProfile,
                                    detail::TraceInstallation::Threads::kAll,
                                    std::move(function), where);
  }
  ~ScopedProfileAllThreads() { installation_.Remove(); }

  bool ok() const noexcept { return status_.ok(); }
  const absl::Status& status() const noexcept { return status_; }

 private:
  detail::TraceInstallation installation_;
  absl::Status status_;
};

}  // namespace pyscope

#endif  // PYSCOPE_TRACE_H_
