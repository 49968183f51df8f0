// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// ScopedDeadline (pyscope/deadline.h). A process-wide watchdog thread waits
// for the earliest deadline; firing (also for Cancel()) happens on a
// short-lived thread of its own, which attaches to the target interpreter,
// and sets the exception with PyThreadState_SetAsyncExc only if the scope
// is still armed. A firing thread that waits long for a GIL (the target
// holds it in C code) delays no other deadline.
//
// Why no race reaches unrelated code: the state is checked and the
// exception set under the state's mutex while the firing thread holds the
// target interpreter's GIL; the scope's end disarms under the same mutex
// while its own thread holds that GIL, and withdraws an exception that was
// set but not raised yet. Either the scope ends first (nothing is set), or
// the exception is set first and withdrawn at the end.

#include "pyscope/deadline.h"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "attach.h"
#include "extras.h"
#include "gate.h"
#include "interpreter_registry.h"
#include "misuse.h"
#include "pyscope/gil.h"
#include "thread_state_cache.h"

namespace pyscope {
namespace detail {

struct DeadlineState : std::enable_shared_from_this<DeadlineState> {
  enum class Phase { kArmed, kFiring, kFired, kDisarmed };

  std::mutex mu;
  Phase phase = Phase::kArmed;  // guarded by mu
  int outcome = 0;              // 1 expired, 2 cancelled; guarded by mu
  absl::Time deadline = absl::InfiniteFuture();
  // The target: set at arming, constant afterwards.
  unsigned long thread_id = 0;  // PyThreadState.thread_id
  PyThreadState* tstate = nullptr;
  PyInterpreterState* interp = nullptr;
  std::shared_ptr<InterpControl> control;  // null for the main interpreter
  PyObject* exception_type = nullptr;      // strong reference
  SourceLocation where;
};

namespace {

using Phase = DeadlineState::Phase;

// The watchdog: the armed deadlines, earliest first.
struct Watchdog {
  std::mutex mu;
  std::condition_variable changed;
  std::multimap<absl::Time, std::weak_ptr<DeadlineState>> armed;
  pid_t thread_pid = 0;  // the process whose watchdog thread runs (0: none)
};

Watchdog& GetWatchdog() {
  // Never destroyed: the watchdog thread is never joined.
  static Watchdog* const watchdog = new Watchdog;
  return *watchdog;
}

// Sets the exception in the target thread, on a thread of its own.
void FireNow(std::shared_ptr<DeadlineState> state)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  pthread_setname_np(pthread_self(), "pyscope-deadln");
  auto set_exception = [&state]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    std::lock_guard<std::mutex> lock(state->mu);
    if (state->phase != Phase::kFiring) return;  // disarmed meanwhile
    // The calling thread holds the GIL of the target's interpreter, which
    // is the one PyThreadState_SetAsyncExc searches.
    PyThreadState_SetAsyncExc(state->thread_id, state->exception_type);
    state->phase = Phase::kFired;
  };
  if (state->control == nullptr) {
    GILGuard gil(std::nothrow);
    if (gil.ok()) set_exception();
    return;
  }
  // A thread of its own, outside every scope: a cold entry, undone below.
  Scope scope = OpenScope();
  Attachment attachment;
  absl::Status refused;
  if (!EnterInterpreter(scope, state->control.get(), state->where, &attachment,
                        &refused)) {
    return;  // the interpreter ended or is ending
  }
  set_exception();
  DetachSlow(scope, attachment);
}

// Moves `state` from armed to firing for `outcome`; false if it was not
// armed.
bool RequestFire(const std::shared_ptr<DeadlineState>& state, int outcome) {
  {
    std::lock_guard<std::mutex> lock(state->mu);
    if (state->phase != Phase::kArmed) return false;
    state->phase = Phase::kFiring;
    state->outcome = outcome;
  }
  std::thread(&FireNow, state).detach();
  return true;
}

void WatchdogLoop() {
  pthread_setname_np(pthread_self(), "pyscope-watchdg");
  Watchdog& watchdog = GetWatchdog();
  std::unique_lock<std::mutex> lock(watchdog.mu);
  for (;;) {
    if (watchdog.armed.empty()) {
      watchdog.changed.wait(lock);
      continue;
    }
    const absl::Time now = absl::Now();
    auto first = watchdog.armed.begin();
    if (first->first > now) {
      watchdog.changed.wait_for(lock,
                                absl::ToChronoNanoseconds(first->first - now));
      continue;
    }
    std::shared_ptr<DeadlineState> state = first->second.lock();
    watchdog.armed.erase(first);
    if (state == nullptr) continue;
    lock.unlock();
    RequestFire(state, /*outcome=*/1);
    lock.lock();
  }
}

// Adds `state` to the watchdog, starting its thread in this process if
// needed (also in a fork child, where the parent's does not exist).
void Watch(const std::shared_ptr<DeadlineState>& state) {
  Watchdog& watchdog = GetWatchdog();
  std::lock_guard<std::mutex> lock(watchdog.mu);
  watchdog.armed.emplace(state->deadline, state);
  const pid_t self = getpid();
  if (watchdog.thread_pid != self) {
    watchdog.thread_pid = self;
    std::thread(&WatchdogLoop).detach();
  }
  watchdog.changed.notify_one();
}

void Unwatch(DeadlineState* state) {
  Watchdog& watchdog = GetWatchdog();
  std::lock_guard<std::mutex> lock(watchdog.mu);
  auto [begin, end] = watchdog.armed.equal_range(state->deadline);
  for (auto it = begin; it != end; ++it) {
    if (it->second.lock().get() == state) {
      watchdog.armed.erase(it);
      break;
    }
  }
}

}  // namespace

absl::Status ArmDeadline(std::shared_ptr<DeadlineState>* out,
                         absl::Duration timeout, const DeadlineOptions& options,
                         const SourceLocation& where)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {  // checks the GIL at run time
  PyThreadState* tstate = AttachedHere(ThisRecord());
  if (tstate == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "pyscope: ScopedDeadline created on a thread that does not hold the "
        "GIL (at ",
        Site(where), "): open a pyscope::GILGuard first"));
  }
  PyObject* exception_type = options.exception_type != nullptr
                                 ? options.exception_type
                                 : PyExc_TimeoutError;
  if (!PyExceptionClass_Check(exception_type)) {
    return absl::InvalidArgumentError(
        "pyscope: DeadlineOptions::exception_type is not an exception class "
        "(a class derived from BaseException)");
  }
  auto state = std::make_shared<DeadlineState>();
  state->tstate = tstate;
  state->thread_id = tstate->thread_id;
  state->interp = PyThreadState_GetInterpreter(tstate);
  state->where = where;
  if (state->interp != Gate::Get().main_interpreter()) {
    for (const auto& control : InterpreterRegistry::Get().Live()) {
      if (control->Alive() == state->interp) state->control = control;
    }
    if (state->control == nullptr) {
      return absl::FailedPreconditionError(
          "pyscope: ScopedDeadline in an interpreter that pyscope did not "
          "create (use a pyscope::SubInterpreter, or the main interpreter)");
    }
  }
  Py_INCREF(exception_type);
  state->exception_type = exception_type;
  if (timeout != absl::InfiniteDuration()) {
    state->deadline = absl::Now() + std::max(timeout, absl::ZeroDuration());
    Watch(state);
  }
  *out = std::move(state);
  return absl::OkStatus();
}

void DisarmDeadline(DeadlineState* state) noexcept
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  Phase before;
  {
    std::lock_guard<std::mutex> lock(state->mu);
    before = state->phase;
    state->phase = Phase::kDisarmed;
  }
  if (before == Phase::kDisarmed) return;
  if (state->deadline != absl::InfiniteFuture()) Unwatch(state);
  if (compat::CurrentThreadStateUnchecked() != state->tstate) {
    // Without its thread state attached nothing of CPython may be touched:
    // the reference is leaked, and a scheduled exception stays scheduled.
    std::fprintf(stderr,
                 "pyscope: the ScopedDeadline created at %s ended without its "
                 "thread state attached (released by a call pyscope does not "
                 "see)%s.\n",
                 Site(state->where).c_str(),
                 before == Phase::kFired
                     ? "; its exception, already scheduled, may still be "
                       "raised in this thread"
                     : "");
    return;
  }
  // Withdraws an exception that was set but has not been raised yet.
  if (before == Phase::kFired) {
    PyThreadState_SetAsyncExc(state->thread_id, nullptr);
  }
  Py_CLEAR(state->exception_type);
}

bool CancelDeadline(DeadlineState* state) {
  return RequestFire(state->shared_from_this(), /*outcome=*/2);
}

bool LockDeadlinesForFork(int patience_ms) {
  std::mutex& mu = GetWatchdog().mu;
  for (int waited = 0;; ++waited) {
    if (mu.try_lock()) return true;
    if (waited >= patience_ms) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void UnlockDeadlinesAfterFork(bool locked, bool in_child) {
  Watchdog& watchdog = GetWatchdog();
  if (locked) {
    watchdog.mu.unlock();
  } else if (in_child) {
    new (&watchdog.mu) std::mutex();
  }
  // Threads that waited on it do not exist in the child.
  if (in_child) new (&watchdog.changed) std::condition_variable();
}

void ForgetDeadlinesAfterFork() {
  Watchdog& watchdog = GetWatchdog();
  std::lock_guard<std::mutex> lock(watchdog.mu);
  // Only the forking thread exists here: the deadlines of the others would
  // fire at threads that do not exist (or, worse, at new threads that reuse
  // their ids). The watchdog thread does not exist either: Watch() starts
  // one when the child arms a deadline.
  const unsigned long self = PyThread_get_thread_ident();
  for (auto it = watchdog.armed.begin(); it != watchdog.armed.end();) {
    std::shared_ptr<DeadlineState> state = it->second.lock();
    if (state == nullptr || state->thread_id != self) {
      it = watchdog.armed.erase(it);
    } else {
      ++it;
    }
  }
  watchdog.thread_pid = 0;
}

int DeadlineOutcome(const DeadlineState* state) {
  std::lock_guard<std::mutex> lock(const_cast<DeadlineState*>(state)->mu);
  return state->outcome;
}

}  // namespace detail
}  // namespace pyscope
