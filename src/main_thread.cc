// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Calls posted to the main thread (pyscope/main_thread.h). Each posted call
// is kept here under a numeric token; CPython's pending-call queue holds
// only the token (never a pointer), so a call that finalization discarded,
// or that a fork child forgot, is simply not found when CPython runs the
// token later.

#include "pyscope/main_thread.h"

#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "attach.h"
#include "caught_exception.h"
#include "extras.h"
#include "gate.h"
#include "lock.h"
#include "misuse.h"
#include "pyscope/gil.h"
#include "pyscope/thread_state_swap.h"
#include "thread_state_cache.h"

namespace pyscope {
namespace detail {
namespace {

struct Calls {
  CoreMutex mu;
  uint64_t next_token ABSL_GUARDED_BY(mu) = 1;
  std::unordered_map<uint64_t, MainThreadCall> pending ABSL_GUARDED_BY(mu);
  // The runtime generation whose calls were discarded at its finalization:
  // no call is accepted under it any more.
  uint64_t closed_generation ABSL_GUARDED_BY(mu) = 0;
  // Posters between registering a call and Py_AddPendingCall returning
  // (3.12+, where posting needs no GIL): finalization waits for them, so
  // that no Py_AddPendingCall runs after Py_FinalizeEx.
  int in_flight ABSL_GUARDED_BY(mu) = 0;
  MainThreadCallStats stats ABSL_GUARDED_BY(mu);
};

Calls& GetCalls() {
  // Never destroyed: pending calls may run during Py_FinalizeEx at exit.
  static Calls* const calls = new Calls;
  return *calls;
}

void* TokenPointer(uint64_t token) {
  return reinterpret_cast<void*>(static_cast<uintptr_t>(token));
}

// CPython's side: runs on the main thread with the GIL held. Always
// returns 0, so that a failing call never raises into the Python code the
// main thread happened to be running.
int RunToken(void* pointer) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  Calls& calls = GetCalls();
  const auto token =
      static_cast<uint64_t>(reinterpret_cast<uintptr_t>(pointer));
  MainThreadCall call;
  {
    CoreLock lock(&calls.mu);
    auto it = calls.pending.find(token);
    if (it == calls.pending.end()) return 0;  // discarded or forgotten
    call = std::move(it->second);
    calls.pending.erase(it);
    --calls.stats.pending;
  }
  const bool ok = call.run();
  call = MainThreadCall();  // destroyed with the GIL held
  CoreLock lock(&calls.mu);
  ++calls.stats.ran;
  if (!ok) ++calls.stats.failed;
  return 0;
}

// Reports a failed call through sys.unraisablehook, naming where it was
// posted. Requires the GIL and a raised Python exception.
void ReportUnraisable(const SourceLocation& where) PYSCOPE_REQUIRES_GIL {
  PyObject* context = PyUnicode_FromString(
      absl::StrCat("a call posted to the main thread at ", Site(where))
          .c_str());
  PyErr_WriteUnraisable(context);
  Py_XDECREF(context);
}

// Queues `token` with CPython for the main interpreter's main thread.
absl::Status AddPendingCall(uint64_t token) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  int rc = 0;
  if constexpr (compat::kPendingCallsNeedMainThreadState) {
    // The caller holds the GIL (PostMainThreadCall); the current thread
    // state decides the queue, so it must be a main-interpreter one.
    PyThreadState* current = PyThreadState_Get();
    if (PyThreadState_GetInterpreter(current) == PyInterpreterState_Main()) {
      rc = Py_AddPendingCall(&RunToken, TokenPointer(token));
    } else {
      // Inside a sub-interpreter scope: pyscope made this thread's main
      // interpreter state first, and it is this thread's PyGILState state.
      PyThreadState* home = PyGILState_GetThisThreadState();
      if (home == nullptr ||
          PyThreadState_GetInterpreter(home) != PyInterpreterState_Main()) {
        return absl::FailedPreconditionError(
            "pyscope: PostToMainThread from a thread attached to a "
            "sub-interpreter that has no main-interpreter thread state; "
            "before CPython 3.12 the call would be queued for the "
            "sub-interpreter. Post from outside the sub-interpreter scope.");
      }
      ThreadStateSwap swap(home);
      rc = Py_AddPendingCall(&RunToken, TokenPointer(token));
    }
  } else {
    rc = Py_AddPendingCall(&RunToken, TokenPointer(token));
  }
  if (rc != 0) {
    return absl::ResourceExhaustedError(
        "pyscope: CPython's pending-call queue is full (the main thread has "
        "not run Python code since the calls were posted); try again later");
  }
  return absl::OkStatus();
}

// Registers `call` unless the runtime is not running or finalization
// discarded its calls. Returns its token, or 0 with `*refusal` set.
uint64_t Register(MainThreadCall& call, absl::Status* refusal) {
  Calls& calls = GetCalls();
  Gate& gate = Gate::Get();
  CoreLock lock(&calls.mu);
  const Gate::State state = gate.state();
  if (state == Gate::State::kUninitialized) {
    *refusal = absl::FailedPreconditionError(
        "pyscope: cannot post to the main thread: no pyscope::ScopedRuntime "
        "has initialized Python");
    return 0;
  }
  if (state != Gate::State::kRunning ||
      calls.closed_generation == gate.generation()) {
    *refusal = absl::UnavailableError(
        absl::StrCat("pyscope: cannot post to the main thread: the runtime ",
                     state == Gate::State::kFinalized ? "has been finalized"
                                                      : "is being finalized"));
    return 0;
  }
  const uint64_t token = calls.next_token++;
  calls.pending.emplace(token, std::move(call));
  ++calls.in_flight;
  ++calls.stats.posted;
  ++calls.stats.pending;
  return token;
}

// After Py_AddPendingCall returned: when it failed, takes the call back
// (unless finalization discarded it meanwhile), for the caller to destroy.
MainThreadCall Settle(uint64_t token, bool accepted) {
  Calls& calls = GetCalls();
  CoreLock lock(&calls.mu);
  --calls.in_flight;
  MainThreadCall taken;
  if (accepted) return taken;
  auto it = calls.pending.find(token);
  if (it != calls.pending.end()) {
    taken = std::move(it->second);
    calls.pending.erase(it);
    --calls.stats.posted;
    --calls.stats.pending;
  }
  return taken;
}

absl::Status Post(MainThreadCall call) {
  absl::Status refusal;
  const uint64_t token = Register(call, &refusal);
  if (token == 0) return refusal;
  absl::Status status = AddPendingCall(token);
  MainThreadCall taken = Settle(token, status.ok());
  return status;
}

}  // namespace

absl::Status PostMainThreadCall(MainThreadCall call,
                                const SourceLocation& where) {
  (void)where;
  if constexpr (compat::kPendingCallsNeedMainThreadState) {
    // Held across registering and queuing: finalization discards the
    // calls with the GIL held, so it never runs between the two.
    GILGuard gil(std::nothrow, where);
    if (!gil.ok()) return gil.status();
    return Post(std::move(call));
  } else {
    return Post(std::move(call));
  }
}

void DiscardMainThreadCalls() {
  Calls& calls = GetCalls();
  std::vector<MainThreadCall> discarded;
  const absl::Time give_up = absl::Now() + absl::Seconds(5);
  for (;;) {
    {
      CoreLock lock(&calls.mu);
      calls.closed_generation = Gate::Get().generation();
      for (auto& [token, call] : calls.pending) {
        discarded.push_back(std::move(call));
      }
      calls.stats.discarded += calls.pending.size();
      calls.stats.pending -= calls.pending.size();
      calls.pending.clear();
      // Posters in flight only call Py_AddPendingCall, which neither
      // blocks on the GIL nor on anything this thread holds.
      if (calls.in_flight == 0 || absl::Now() >= give_up) break;
    }
    absl::SleepFor(absl::Microseconds(100));
  }
  const absl::Status why = absl::CancelledError(
      "pyscope: the runtime finalized before the main thread ran this call");
  for (MainThreadCall& call : discarded) {
    if (call.discard) call.discard(why);
  }
  discarded.clear();  // the closures are destroyed with the GIL held
}

bool LockMainThreadCallsForFork(int patience_ms) {
  return LockWithin(GetCalls().mu, patience_ms);
}

void UnlockMainThreadCallsAfterFork(bool locked, bool in_child)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (locked) {
    GetCalls().mu.Unlock();
  } else if (in_child) {
    RenewInForkChild(GetCalls().mu);
  }
}

void ForgetMainThreadCallsAfterFork() {
  Calls& calls = GetCalls();
  CoreLock lock(&calls.mu);
  // Leaked on purpose: destroying a closure may need the GIL or objects of
  // threads that do not exist in the child.
  for (auto& [token, call] : calls.pending) {
    new MainThreadCall(std::move(call));
  }
  calls.stats.discarded += calls.pending.size();
  calls.stats.pending -= calls.pending.size();
  calls.pending.clear();
  calls.in_flight = 0;
}

}  // namespace detail

absl::Status PostToMainThread(absl::AnyInvocable<void()> fn,
                              SourceLocation where) {
  detail::MainThreadCall call;
  call.run = [fn = std::move(fn), where]() mutable {
    PYSCOPE_ASSERT_GIL_HELD();  // pending calls run with the GIL held
    try {
      fn();
    } catch (...) {
      detail::RaiseCaughtException("a call posted to the main thread");
    }
    if (PyErr_Occurred() == nullptr) return true;
    detail::ReportUnraisable(where);
    return false;
  };
  return detail::PostMainThreadCall(std::move(call), where);
}

absl::Status RunPendingCalls() {
  if (detail::AttachedHere(detail::ThisRecord()) == nullptr) {
    return absl::FailedPreconditionError(
        "pyscope::RunPendingCalls called on a thread that does not hold the "
        "GIL: open a pyscope::GILGuard first");
  }
  if (Py_MakePendingCalls() != 0) {
    return PythonError::FetchAndClear().status();
  }
  return absl::OkStatus();
}

MainThreadCallStats GetMainThreadCallStats() {
  detail::Calls& calls = detail::GetCalls();
  detail::CoreLock lock(&calls.mu);
  return calls.stats;
}

}  // namespace pyscope
