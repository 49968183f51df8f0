// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// The attach gate, per-thread records and the thread-state cache.
//
// The gate protocol (why no guard can attach into a finalizing runtime):
// a thread about to attach stores `attaching = 1` (sequentially consistent)
// and then loads the runtime state; the finalizer stores the new state and
// then loads every thread's `attaching`. With sequential consistency at
// least one side sees the other: either the thread sees the closed gate and
// backs out, or the finalizer sees the thread and waits for it. The same
// handshake on `hard` keeps re-attachments (AllowThreads' destructor) out of
// Py_FinalizeEx, which frees the thread states they would restore.

#include <linux/membarrier.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core_internal.h"
#include "pyscope/detail/core.h"

namespace pyscope::detail {
namespace {

// Asymmetric fences (membarrier(2), Linux 4.14+). The attach side of the
// gate runs on every cold acquisition and every AllowThreads exit; the
// finalizer side runs once per finalization. With membarrier registered,
// the attach side needs only a compiler fence and the finalizer forces a
// full memory barrier on every running thread of the process; without it
// (old kernels, seccomp), both sides use sequentially consistent fences.
std::atomic<bool> membarrier_ready{false};

void AttachFence() {
  if (membarrier_ready.load(std::memory_order_relaxed)) {
    std::atomic_signal_fence(std::memory_order_seq_cst);
  } else {
    std::atomic_thread_fence(std::memory_order_seq_cst);
  }
}

void LeaveControl(InterpControl* control, ThreadRecord* record);

// Marks the calling thread as attaching; the caller then reads the gate.
void BeginAttaching(ThreadRecord& record) {
  record.attaching.store(1, std::memory_order_relaxed);
  AttachFence();
}

// True when `tstate`, the result of CurrentThreadStateUnchecked(), is
// attached on the calling thread. From 3.12 the pointer is thread-local;
// before, it is the GIL holder's, so compare it with the thread states this
// thread is known to own.
bool IsAttachedHere(ThreadRecord& record, PyThreadState* tstate) {
  if (tstate == nullptr) return false;
  if (compat::kCurrentThreadStateIsThreadLocal) return true;
  if (tstate == record.tstate) return true;
  if (tstate == PyGILState_GetThisThreadState()) return true;
  {
    RecordImpl& impl = ImplOf(record);
    CoreLock lock(&impl.mu);
    for (const OwnedThreadState& owned : impl.owned) {
      if (owned.tstate == tstate) return true;
    }
  }
  // A state the host made by hand (PyThreadState_New) and attached on this
  // thread.
  return compat::CreatedOnThisThread(tstate);
}

void CloseScope(const Scope& scope) {
  ThreadRecord& record = *scope.record;
  record.holding = scope.prev_holding;
  record.tstate = scope.prev_tstate;
  --record.level;
}

// Ends the calling thread the way CPython's take_gil does for a thread that
// wants the GIL back after finalization started, but without touching the
// freed interpreter state first. glibc implements pthread_exit as a forced
// unwind, so the destructors of enclosing scopes run.
[[noreturn]] void EndThreadAfterFinalization(const Scope& scope,
                                             const char* guard) {
  ThreadRecord& record = *scope.record;
  std::fprintf(stderr,
               "pyscope: ending thread %s: its %s scope tried to take the GIL "
               "back after the Python runtime was finalized (it was still "
               "inside a guard when the drain deadline expired).\n",
               DescribeThread(record).c_str(), guard);
  record.holding = false;
  record.tstate = scope.prev_tstate;
  --record.level;
  pthread_exit(nullptr);
}

// Re-attaches `tstate` on the calling thread with the gate handshake.
// True for the finalizing thread while it runs the exit callbacks (the
// only time it can be in a guard while finalizing): Python still works
// until this thread itself calls Py_FinalizeEx, so an AllowThreads (or a
// GILGuard nested in one) in a callback must get the GIL back, not end the
// thread.
bool IsFinalizerInExitCallbacks(ThreadRecord& record) {
  Core& core = GetCore();
  if (core.state.load(std::memory_order_acquire) !=
      static_cast<int>(RuntimeState::kFinalizing)) {
    return false;
  }
  CoreLock lock(&core.mu);
  return core.init_record == &record;
}

// Whether `tstate` is a thread state pyscope created for this thread.
bool OwnedByPyscope(ThreadRecord& record, PyThreadState* tstate) {
  RecordImpl& impl = ImplOf(record);
  CoreLock lock(&impl.mu);
  for (const OwnedThreadState& owned : impl.owned) {
    if (owned.tstate == tstate) return true;
  }
  return false;
}

void ReattachOrEndThread(const Scope& scope, PyThreadState* tstate,
                         const char* guard) {
  ThreadRecord& record = *scope.record;
  Core& core = GetCore();
  BeginAttaching(record);
  // Past the point of no return, only thread states pyscope created for
  // native threads are at risk (Py_FinalizeEx frees them); a Python
  // thread's own state re-attaches as Py_END_ALLOW_THREADS would (CPython
  // joins non-daemon threads, which needs exactly that, and ends daemon
  // ones itself). Once the runtime's states were freed, nobody re-attaches.
  const uint64_t scope_generation = ImplOf(record).scope_generation;
  const bool freed = scope_generation != 0 &&  // 0: no runtime was started
                     scope_generation <=
                         core.freed_generation.load(std::memory_order_relaxed);
  if ((freed || (core.hard.load(std::memory_order_relaxed) &&
                 OwnedByPyscope(record, tstate))) &&
      !IsFinalizerInExitCallbacks(record)) {
    record.attaching.store(0, std::memory_order_release);
    EndThreadAfterFinalization(scope, guard);
  }
  PyEval_RestoreThread(tstate);
  record.attaching.store(0, std::memory_order_release);
}

// Finds the control block of a live sub-interpreter.
InterpControl* FindControlLocked(Core& core, PyInterpreterState* interp)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(core.mu) {
  for (const auto& control : core.interps) {
    if (control->interp == interp) return control.get();
  }
  return nullptr;
}

// Frees the calling thread's cached thread states when it exits, where the
// interpreter that owns them still runs (otherwise CPython freed them, or
// the thread ending that interpreter deletes them). Attaches by itself,
// which Clang's analysis cannot follow (docs/compile_time.md).
void ReleaseOwnedAtThreadExit(ThreadRecord& record)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  Core& core = GetCore();
  RecordImpl& impl = ImplOf(record);
  for (;;) {
    OwnedThreadState entry{};
    InterpControl* control = nullptr;
    {
      // Lock order: core.mu, then a record's mu, then a control's mu.
      CoreLock core_lock(&core.mu);
      CoreLock lock(&impl.mu);
      if (impl.owned.empty()) return;
      // Sub-interpreter states first: their interpreters need the main one.
      auto it = std::find_if(impl.owned.begin(), impl.owned.end(),
                             [&core](const OwnedThreadState& owned) {
                               return owned.interp != core.main_interp;
                             });
      if (it == impl.owned.end()) it = impl.owned.begin();
      entry = *it;
      impl.owned.erase(it);
      if (entry.generation != core.generation.load(std::memory_order_seq_cst)) {
        continue;  // freed by Py_FinalizeEx
      }
      if (entry.interp != core.main_interp) {
        control = FindControlLocked(core, entry.interp);
        if (control == nullptr) continue;  // ended: freed by CPython
        CoreLock control_lock(&control->mu);
        if (control->ended) continue;
        if (control->ending) {
          core.orphans.push_back({entry.interp, entry.tstate});
          continue;
        }
        control->active.push_back(&record);
      }
    }
    BeginAttaching(record);
    const bool alive =
        core.state.load(std::memory_order_seq_cst) ==
            static_cast<int>(RuntimeState::kRunning) &&
        !core.hard.load(std::memory_order_seq_cst) &&
        core.generation.load(std::memory_order_seq_cst) == entry.generation;
    if (alive) {
      PyEval_RestoreThread(entry.tstate);
      PyThreadState_Clear(entry.tstate);
      PyThreadState_DeleteCurrent();
    }
    record.attaching.store(0, std::memory_order_release);
    if (control != nullptr) {
      LeaveControl(control, &record);
    }
  }
}

// A thread is exiting with `record.level` guard scopes still open: reports
// Misuse::kThreadExitedInsideGuard and, if the handler returns, detaches
// the thread so that the runtime stays usable: a thread state pyscope
// created and that is still attached is cleared and deleted (which releases
// its GIL); a borrowed one is detached; the thread leaves every
// sub-interpreter it was inside and the drain stops waiting for it. The
// scopes stay open on the record, so the leaked guards are reported (and
// do nothing) when they are destroyed later.
void RecoverFromExitInsideScopes(ThreadRecord& record)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {  // detaches by itself
  Core& core = GetCore();
  RecordImpl& impl = ImplOf(record);
  const SourceLocation site = SourceLocation::Current(
      record.site_file.load(std::memory_order_relaxed),
      record.site_line.load(std::memory_order_relaxed),
      record.site_function.load(std::memory_order_relaxed));
  const std::string detail = absl::StrCat(
      "The thread exited with ", record.level,
      " guard scope(s) still open (the guard was kept in a std::optional, a "
      "heap object or another object that outlived the thread's scope). A "
      "guard must end on its own thread before the thread exits: keep it a "
      "local variable of the block it protects. If the misuse handler "
      "returns, pyscope detaches the thread (deleting the thread state it "
      "created for it) and the leaked guards do nothing when destroyed.");
  ReportMisuse(Misuse::kThreadExitedInsideGuard, GuardKind::kGILGuard, site,
               detail.c_str());
  pthread_getname_np(pthread_self(), impl.exit_name, sizeof(impl.exit_name));
  impl.exited.store(true, std::memory_order_release);
  PyThreadState* current = compat::CurrentThreadStateUnchecked();
  if (record.holding && current != nullptr && current == record.tstate) {
    bool owned = false;
    {
      CoreLock lock(&impl.mu);
      for (auto it = impl.owned.begin(); it != impl.owned.end(); ++it) {
        if (it->tstate == current) {
          impl.owned.erase(it);
          owned = true;
          break;
        }
      }
      if (impl.main_tstate == current) impl.main_tstate = nullptr;
    }
    if (owned) {
      PyThreadState_Clear(current);
      PyThreadState_DeleteCurrent();
    } else {
      PyEval_SaveThread();
    }
  }
  {
    CoreLock lock(&core.mu);
    for (const auto& control : core.interps) {
      CoreLock control_lock(&control->mu);
      auto& active = control->active;
      const auto before = active.size();
      active.erase(std::remove(active.begin(), active.end(), &record),
                   active.end());
      if (active.size() != before && control->ending && active.empty()) {
        control->idle.notify_all();
      }
    }
  }
  record.holding = false;
  record.tstate = nullptr;
  record.inside.store(0, std::memory_order_release);
}

// The hot path reads only this pointer: a plain, initial-exec TLS word
// costs one load, where a thread_local object costs a call to its
// initialization wrapper and __tls_get_addr on every access from a shared
// library. Cleared when the thread's record is retired at thread exit.
__thread ThreadRecord* tls_record __attribute__((tls_model("initial-exec"))) =
    nullptr;

// A thread's record lives on the heap and is retired by a pthread key
// destructor, not by a thread_local object: glibc runs every C++
// thread_local destructor of a thread before its key destructors
// (start_thread: __call_tls_dtors, then __nptl_deallocate_tsd), so a guard
// in any thread_local destructor finds the record and its thread states
// alive, whatever order the thread_local objects were constructed in. A
// key destructor of another library that uses a guard after ours ran gets a
// new record, and glibc calls our destructor again for it. The main thread
// runs no key destructors (exit() does not), so its record outlives static
// destruction: a ScopedRuntime in a static object finalizes normally.
struct RecordHolder {
  ThreadRecord record;
  RecordImpl impl;

  RecordHolder() {
    record.os_thread_id = static_cast<uint64_t>(syscall(SYS_gettid));
    record.impl = &impl;
    impl.handle = static_cast<unsigned long>(pthread_self());
    Core& core = GetCore();
    CoreLock lock(&core.mu);
    core.records.push_back(&record);
  }
};

pthread_key_t record_key;
pthread_once_t record_key_once = PTHREAD_ONCE_INIT;

void RetireRecord(void* holder);

void CreateRecordKey() {
  if (pthread_key_create(&record_key, &RetireRecord) != 0) {
    std::fprintf(stderr, "pyscope: pthread_key_create failed\n");
    std::abort();
  }
}

ThreadRecord* InitThisThread() {
  pthread_once(&record_key_once, &CreateRecordKey);
  auto* holder = new RecordHolder;
  pthread_setspecific(record_key, holder);
  tls_record = &holder->record;
  return tls_record;
}

void RecoverFromExitInsideScopes(ThreadRecord& record);

// The key destructor: frees the exiting thread's cached thread states and
// unregisters its record. A thread that exits with guard scopes still open
// (a guard kept in a std::optional or an object that outlives the thread)
// is a misuse; if the handler returns, the thread is detached cleanly and
// its record is kept (never freed), so that the leaked guard, destroyed
// later on another thread, is reported instead of touching freed memory.
void RetireRecord(void* pointer) {
  auto* holder = static_cast<RecordHolder*>(pointer);
  ThreadRecord& record = holder->record;
  const bool leaked_scopes = record.level > 0;
  if (leaked_scopes) RecoverFromExitInsideScopes(record);
  ReleaseOwnedAtThreadExit(record);
  tls_record = nullptr;
  Core& core = GetCore();
  {
    CoreLock lock(&core.mu);
    core.records.erase(
        std::find(core.records.begin(), core.records.end(), &record));
    if (leaked_scopes) core.exited_records.push_back(&record);
  }
  if (!leaked_scopes) delete holder;
}

std::atomic<MisuseHandler> misuse_handler{nullptr};

void DefaultMisuseHandler(const MisuseReport& report) {
  std::fprintf(stderr, "%s\n", report.message.c_str());
  std::fflush(stderr);
  std::abort();
}

std::string Site(const SourceLocation& where) {
  return absl::StrFormat("%s:%d in %s()", where.file(), where.line(),
                         where.function());
}

}  // namespace

void PrepareGateFences() {
  if (membarrier_ready.load(std::memory_order_acquire)) return;
  const long supported =
      syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
  if (supported < 0 ||
      (supported & MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0 ||
      syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0,
              0) != 0) {
    return;
  }
  membarrier_ready.store(true, std::memory_order_release);
}

void GateFence() {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (membarrier_ready.load(std::memory_order_acquire)) {
    syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
  }
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

Core* const core_instance = new Core;

ThreadRecord& ThisThread() noexcept {
  ThreadRecord* record = tls_record;
  if (__builtin_expect(record == nullptr, 0)) record = InitThisThread();
  return *record;
}

std::string DescribeThread(const ThreadRecord& record) {
  char name[32] = "";
  const auto* impl = static_cast<const RecordImpl*>(record.impl);
  if (impl != nullptr) {
    if (impl->exited.load(std::memory_order_acquire)) {
      // Its pthread_t is gone; the name was saved at exit.
      std::snprintf(name, sizeof(name), "%s", impl->exit_name);
    } else {
      pthread_getname_np(static_cast<pthread_t>(impl->handle), name,
                         sizeof(name));
    }
  }
  return absl::StrFormat("%d (\"%s\")", record.os_thread_id, name);
}

const char* GuardName(GuardKind kind) {
  switch (kind) {
    case GuardKind::kGILGuard:
      return "GILGuard";
    case GuardKind::kAllowThreads:
      return "AllowThreads";
    case GuardKind::kThreadStateSwap:
      return "ThreadStateSwap";
    case GuardKind::kScopedRuntime:
      return "ScopedRuntime";
  }
  return "guard";
}

absl::Status RefusalFor(int state) {
  switch (static_cast<RuntimeState>(state)) {
    case RuntimeState::kUninitialized:
      return absl::FailedPreconditionError(
          "pyscope: cannot attach to Python: no pyscope::ScopedRuntime has "
          "initialized the interpreter (create one first, or "
          "ScopedRuntime::Adopt() an interpreter the host initialized)");
    case RuntimeState::kFinalizing:
      return absl::UnavailableError(
          "pyscope: cannot attach to Python: the runtime is being finalized; "
          "new attachments from native threads are refused");
    case RuntimeState::kFinalized:
      return absl::UnavailableError(
          "pyscope: cannot attach to Python: the runtime has been finalized");
    case RuntimeState::kRunning:
      break;
  }
  return absl::OkStatus();
}

PyThreadState* ThreadStateFor(ThreadRecord& record, PyInterpreterState* interp,
                              uint64_t generation) {
  Core& core = GetCore();
  RecordImpl& impl = ImplOf(record);
  // Fast: the main-interpreter state this thread used before under this
  // runtime (one pyscope owns, or the initializing thread's).
  if (interp == core.main_interp && impl.main_generation == generation &&
      impl.main_tstate != nullptr) {
    return impl.main_tstate;
  }
  PyThreadState* known = PyGILState_GetThisThreadState();
  if (interp == core.main_interp && known != nullptr &&
      PyThreadState_GetInterpreter(known) == interp) {
    return known;
  }
  if (interp != core.main_interp && known == nullptr &&
      ThreadStateFor(record, core.main_interp, generation) == nullptr) {
    return nullptr;
  }
  CoreLock lock(&impl.mu);
  for (const OwnedThreadState& owned : impl.owned) {
    if (owned.interp == interp && owned.generation == generation) {
      return owned.tstate;
    }
  }
  // Drop entries of finalized runtimes (CPython freed them) before adding.
  impl.owned.erase(
      std::remove_if(impl.owned.begin(), impl.owned.end(),
                     [generation](const OwnedThreadState& owned) {
                       return owned.generation != generation;
                     }),
      impl.owned.end());
  // "The global interpreter lock need not be held" (PyThreadState_New docs).
  // The new state counts as created by PyGILState (gilstate_counter = 1 in
  // every supported version), so a host's PyGILState_Ensure/Release pair on
  // this thread never deletes it under us.
  PyThreadState* created = PyThreadState_New(interp);
  if (created != nullptr) {
    impl.owned.push_back({interp, generation, created});
    if (interp == core.main_interp) {
      impl.main_tstate = created;
      impl.main_generation = generation;
    }
  }
  return created;
}

void AdoptThreadState(ThreadRecord& record, PyInterpreterState* interp,
                      PyThreadState* tstate) {
  RecordImpl& impl = ImplOf(record);
  CoreLock lock(&impl.mu);
  impl.owned.push_back(
      {interp, GetCore().generation.load(std::memory_order_acquire), tstate});
}

namespace {

absl::Status Refuse(Scope& scope, Attachment* attachment, absl::Status why) {
  CloseScope(scope);
  attachment->mode = AttachMode::kFailed;
  return why;
}

// Cold attach through the gate; `pick` chooses the thread state once the
// gate admitted the thread.
template <typename PickThreadState>
bool AttachCold(Scope& scope, const SourceLocation& where,
                Attachment* attachment, absl::Status* error,
                PickThreadState pick) {
  ThreadRecord& record = *scope.record;
  Core& core = GetCore();
  BeginAttaching(record);
  const int state = core.state.load(std::memory_order_relaxed);
  if (state != static_cast<int>(RuntimeState::kRunning)) {
    record.attaching.store(0, std::memory_order_release);
    *error = Refuse(scope, attachment, RefusalFor(state));
    return false;
  }
  const uint64_t generation = core.generation.load(std::memory_order_acquire);
  PyThreadState* tstate = pick(generation);
  if (tstate == nullptr) {
    record.attaching.store(0, std::memory_order_release);
    *error = Refuse(scope, attachment,
                    absl::ResourceExhaustedError(
                        "pyscope: PyThreadState_New failed (out of memory)"));
    return false;
  }
  ImplOf(record).scope_generation = generation;
  record.site_file.store(where.file(), std::memory_order_relaxed);
  record.site_function.store(where.function(), std::memory_order_relaxed);
  record.site_line.store(where.line(), std::memory_order_relaxed);
  record.inside.store(record.inside.load(std::memory_order_relaxed) + 1,
                      std::memory_order_relaxed);
  PyEval_RestoreThread(tstate);
  record.attaching.store(0, std::memory_order_release);
  record.holding = true;
  record.tstate = tstate;
  attachment->mode = AttachMode::kRestored;
  return true;
}

void Borrow(Scope& scope, PyThreadState* current, Attachment* attachment) {
  ThreadRecord& record = *scope.record;
  if (scope.level == 1) {
    ImplOf(record).scope_generation =
        GetCore().generation.load(std::memory_order_acquire);
  }
  record.holding = true;
  record.tstate = current;
  attachment->mode = AttachMode::kBorrowed;
}

void LeaveControl(InterpControl* control, ThreadRecord* record) {
  CoreLock lock(&control->mu);
  auto& active = control->active;
  active.erase(std::find(active.begin(), active.end(), record));
  if (control->ending && active.empty()) control->idle.notify_all();
}

}  // namespace

// See compat::kAttachRebindsGilState: after a sub-interpreter scope that
// attached this thread (from cold, or under an AllowThreads), moves the
// thread's PyGILState binding from `sub_tstate` to `home` (the parked state
// the thread returns to) or, when null, to its main-interpreter state, by
// attaching that state for a moment. Skipped once finalization passed its
// point of no return (nothing may attach then; the runtime frees every
// state).
void RebindGilState(ThreadRecord& record, PyThreadState* sub_tstate,
                    PyThreadState* home)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {  // attaches by itself
  if (!compat::kAttachRebindsGilState ||
      PyGILState_GetThisThreadState() != sub_tstate) {
    return;
  }
  Core& core = GetCore();
  BeginAttaching(record);
  const uint64_t generation = core.generation.load(std::memory_order_relaxed);
  if (!core.hard.load(std::memory_order_relaxed) &&
      generation == ImplOf(record).scope_generation) {
    if (home == nullptr) {
      home = ThreadStateFor(record, core.main_interp, generation);
    }
    if (home != nullptr) {
      PyEval_RestoreThread(home);
      PyEval_SaveThread();
    }
  }
  record.attaching.store(0, std::memory_order_release);
}

bool AttachSlow(Scope& scope, const SourceLocation& where,
                Attachment* attachment, absl::Status* error) {
  ThreadRecord& record = *scope.record;
  // 1. Already attached by something pyscope did not do (running Python
  //    code called us; the host holds a PyGILState, also one taken inside
  //    an AllowThreads scope, e.g. by pybind11's gil_scoped_acquire; the
  //    host attached a state of its own): borrow it.
  PyThreadState* current = compat::CurrentThreadStateUnchecked();
  if (IsAttachedHere(record, current)) {
    Borrow(scope, current, attachment);
    return true;
  }
  // 2. The enclosing scope's thread state is parked: by AllowThreads
  //    (Py_BLOCK_THREADS), or by code pyscope does not see that released
  //    the GIL inside a GILGuard scope (Py_BEGIN_ALLOW_THREADS,
  //    PyEval_SaveThread, pybind11's gil_scoped_release). Take it back for
  //    this scope and park it again at its end, as PyGILState_Ensure would.
  if (PyThreadState* parked = scope.prev_tstate; parked != nullptr) {
    ReattachOrEndThread(scope, parked, "GILGuard");
    record.holding = true;
    record.tstate = parked;
    attachment->mode = AttachMode::kRestored;
    return true;
  }
  // 3. Cold: through the gate, with the thread's main-interpreter state.
  return AttachCold(scope, where, attachment, error,
                    [&record](uint64_t generation) {
                      return ThreadStateFor(record, GetCore().main_interp,
                                            generation);
                    });
}

// Attaches or detaches the calling thread itself, which Clang's analysis
// cannot follow (docs/compile_time.md).
absl::Status EnterInterpreter(Scope& scope, InterpControl* control,
                              const SourceLocation& where,
                              Attachment* attachment)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  ThreadRecord& record = *scope.record;
  Core& core = GetCore();
  PyInterpreterState* interp = nullptr;
  {
    CoreLock lock(&control->mu);
    if (control->ended || control->interp == nullptr) {
      return Refuse(scope, attachment,
                    absl::FailedPreconditionError(absl::StrCat(
                        "pyscope: sub-interpreter ", control->id,
                        " has ended; it cannot be entered")));
    }
    interp = control->interp;
    // Already running in it on this thread: nested.
    if (scope.prev_holding &&
        compat::CurrentThreadStateUnchecked() == record.tstate &&
        PyThreadState_GetInterpreter(record.tstate) == interp) {
      attachment->mode = AttachMode::kNested;
      return absl::OkStatus();
    }
    if (control->ending) {
      return Refuse(scope, attachment,
                    absl::UnavailableError(absl::StrCat(
                        "pyscope: sub-interpreter ", control->id,
                        " is ending; new entries are refused")));
    }
    control->active.push_back(&record);
  }
  attachment->interp = control;

  // (The enclosing scope may hold a state that code pyscope does not see
  // detached since: only what is attached now counts.)
  PyThreadState* current = compat::CurrentThreadStateUnchecked();
  const bool attached = IsAttachedHere(record, current);
  PyThreadState* from = nullptr;
  if (attached) {
    from = current;
    if (PyThreadState_GetInterpreter(from) == interp) {
      // Python code of this interpreter called us.
      LeaveControl(control, &record);
      attachment->interp = nullptr;
      Borrow(scope, from, attachment);
      return absl::OkStatus();
    }
  }
  // Attached elsewhere (switch), or inside AllowThreads (enter without
  // disturbing the parked state): this thread's state for `interp`.
  if (attached || scope.prev_tstate != nullptr) {
    PyThreadState* tstate = ThreadStateFor(
        record, interp, core.generation.load(std::memory_order_acquire));
    if (tstate == nullptr) {
      LeaveControl(control, &record);
      attachment->interp = nullptr;
      return Refuse(scope, attachment,
                    absl::ResourceExhaustedError(
                        "pyscope: PyThreadState_New failed (out of memory)"));
    }
    // A switch detaches from the current interpreter first (releasing its
    // GIL): from 3.12 interpreters may have different GILs, so the GIL
    // follows the thread state.
    if (attached) PyEval_SaveThread();
    ReattachOrEndThread(scope, tstate, "GILGuard");
    record.holding = true;
    record.tstate = tstate;
    attachment->mode = attached ? AttachMode::kSwitched : AttachMode::kRestored;
    attachment->switched_from = from;
    return absl::OkStatus();
  }
  absl::Status status;
  if (!AttachCold(scope, where, attachment, &status,
                  [&](uint64_t generation) {
                    return ThreadStateFor(record, interp, generation);
                  })) {
    LeaveControl(control, &record);
    attachment->interp = nullptr;
  }
  return status;
}

// Attaches or detaches the calling thread itself, which Clang's analysis
// cannot follow (docs/compile_time.md).
void DetachSlow(const Scope& scope, const Attachment& attachment)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  ThreadRecord& record = *scope.record;
  if (attachment.mode == AttachMode::kRestored) {
    // A thread that finalization ended while it waited for the GIL unwinds
    // through here without holding it: nothing to release.
    const bool lost = GetCore().hard.load(std::memory_order_acquire) &&
                      compat::CurrentThreadStateUnchecked() != record.tstate;
    if (!lost) PyEval_SaveThread();
    if (!lost && attachment.interp != nullptr) {
      RebindGilState(record, record.tstate, scope.prev_tstate);
    }
    if (scope.prev_tstate == nullptr) {
      record.inside.store(record.inside.load(std::memory_order_relaxed) - 1,
                          std::memory_order_release);
    }
  } else if (attachment.mode == AttachMode::kSwitched) {
    PyEval_SaveThread();
  }
  if (attachment.interp != nullptr) LeaveControl(attachment.interp, &record);
  if (attachment.mode == AttachMode::kSwitched) {
    ReattachOrEndThread(scope, attachment.switched_from, "GILGuard");
  }
  CloseScope(scope);
}

// Attaches or detaches the calling thread itself, which Clang's analysis
// cannot follow (docs/compile_time.md).
PyThreadState* DetachForAllowThreads(Scope& scope,
                                     const SourceLocation& where)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  ThreadRecord& record = *scope.record;
  // Checked also inside a scope that holds the GIL: code pyscope does not
  // see may have released it since (Py_BEGIN_ALLOW_THREADS).
  if (!IsAttachedHere(record, compat::CurrentThreadStateUnchecked())) {
    ReportMisuse(Misuse::kAllowThreadsWithoutGil, GuardKind::kAllowThreads,
                 where,
                 "The calling thread does not hold the GIL, so there is "
                 "nothing to release. Create the AllowThreads inside a "
                 "GILGuard scope (or in code called from Python), and not "
                 "inside a raw Py_BEGIN_ALLOW_THREADS / PyEval_SaveThread "
                 "region or a pybind11 gil_scoped_release.");
    return nullptr;
  }
  if (!scope.prev_holding) {
    if (scope.level == 1) {
      ImplOf(record).scope_generation =
          GetCore().generation.load(std::memory_order_acquire);
    }
  }
  PyThreadState* saved = PyEval_SaveThread();
  record.holding = false;
  record.tstate = saved;
  return saved;
}

void ReattachAfterAllowThreads(const Scope& scope, PyThreadState* saved) {
  if (saved != nullptr) ReattachOrEndThread(scope, saved, "AllowThreads");
  CloseScope(scope);
}

// Swaps thread states (from 3.12 also GILs), which Clang's analysis cannot
// follow (docs/compile_time.md).
PyThreadState* SwapIn(Scope& scope, PyThreadState* target,
                      const SourceLocation& where)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  ThreadRecord& record = *scope.record;
  if (target == nullptr) {
    ReportMisuse(Misuse::kSwapWithoutGil, GuardKind::kThreadStateSwap, where,
                 "The thread state to swap in is null. To detach the thread "
                 "for a scope, use AllowThreads.");
    return nullptr;
  }
  if (!IsAttachedHere(record, compat::CurrentThreadStateUnchecked())) {
    ReportMisuse(Misuse::kSwapWithoutGil, GuardKind::kThreadStateSwap, where,
                 "The calling thread does not hold the GIL; "
                 "PyThreadState_Swap requires it. Create the ThreadStateSwap "
                 "inside a GILGuard scope.");
    return nullptr;
  }
  PyThreadState* previous = PyThreadState_Swap(target);
  record.holding = true;
  record.tstate = target;
  return previous;
}

// See SwapIn.
void SwapBack(const Scope& scope, PyThreadState* target,
              PyThreadState* previous, const SourceLocation& where)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  if (previous == nullptr) {  // the constructor reported a misuse
    CloseScope(scope);
    return;
  }
  if (compat::CurrentThreadStateUnchecked() != target) {
    ReportMisuse(Misuse::kSwapTargetLost, GuardKind::kThreadStateSwap, where,
                 "When the scope ended, the thread state it swapped in was no "
                 "longer current: it was deleted (PyThreadState_Clear + "
                 "PyThreadState_DeleteCurrent) or swapped out inside the "
                 "scope. The previous thread state was not restored.");
    CloseScope(scope);
    return;
  }
  PyThreadState_Swap(previous);
  CloseScope(scope);
}

bool CheckScopeEnd(const Scope& scope, GuardKind kind,
                   const SourceLocation& where) noexcept {
  ThreadRecord& here = ThisThread();
  if (&here != scope.record) {
    const bool exited =
        ImplOf(*scope.record).exited.load(std::memory_order_acquire);
    const std::string detail = absl::StrCat(
        "It was created on thread ", DescribeThread(*scope.record),
        exited ? ", which has exited" : "", ". A guard must be destroyed on the thread that created it: keep it "
        "a local variable and never hand it (or a std::optional holding it) "
        "to another thread.");
    ReportMisuse(Misuse::kDestroyedOnOtherThread, kind, where, detail.c_str());
    return false;
  }
  const std::string detail = absl::StrCat(
      "It was scope number ", scope.level, " on this thread, but ",
      here.level - scope.level,
      " scope(s) opened after it were still live. Guards must end in the "
      "reverse order of their creation; keep each guard a local variable of "
      "the block it protects.");
  ReportMisuse(Misuse::kDestroyedOutOfOrder, kind, where, detail.c_str());
  return false;
}

namespace {
const char* Headline(Misuse misuse) {
  switch (misuse) {
    case Misuse::kDestroyedOnOtherThread:
      return "destroyed on a thread other than the one that created it";
    case Misuse::kDestroyedOutOfOrder:
      return "destroyed out of order";
    case Misuse::kAllowThreadsWithoutGil:
      return "created on a thread that does not hold the GIL";
    case Misuse::kSwapWithoutGil:
      return "cannot swap";
    case Misuse::kSwapTargetLost:
      return "lost its thread state";
    case Misuse::kFinalizeOnOtherThread:
      return "finalized on a thread other than the one that initialized it";
    case Misuse::kFinalizeWhileAttached:
      return "finalized while the finalizing thread is inside a guard";
    case Misuse::kSecondRuntime:
      return "created while another ScopedRuntime is live";
    case Misuse::kThreadExitedInsideGuard:
      return "was still live when its thread exited";
  }
  return "misused";
}
}  // namespace

void ReportMisuse(Misuse misuse, GuardKind kind, const SourceLocation& where,
                  const char* detail) {
  MisuseReport report{misuse, GuardName(kind), where, ""};
  report.message = absl::StrCat(
      "pyscope misuse (", MisuseName(misuse), "): ", GuardName(kind),
      " created at ", Site(where), " ", Headline(misuse), ", on thread ",
      DescribeThread(ThisThread()), ". ", detail);
  MisuseHandler handler = misuse_handler.load(std::memory_order_acquire);
  if (handler == nullptr) handler = &DefaultMisuseHandler;
  handler(report);
}

absl::Status DrainAttachedThreads(absl::Duration deadline) {
  Core& core = GetCore();
  ThreadRecord* self = &ThisThread();
  const absl::Time end = absl::Now() + deadline;
  absl::Duration pause = absl::Microseconds(50);
  for (;;) {
    std::vector<std::string> busy;
    {
      CoreLock lock(&core.mu);
      for (ThreadRecord* record : core.records) {
        if (record == self) continue;
        if (record->attaching.load(std::memory_order_seq_cst) != 0 ||
            record->inside.load(std::memory_order_acquire) != 0) {
          busy.push_back(absl::StrFormat(
              "thread %s (GILGuard created at %s:%d in %s())",
              DescribeThread(*record),
              record->site_file.load(std::memory_order_relaxed),
              record->site_line.load(std::memory_order_relaxed),
              record->site_function.load(std::memory_order_relaxed)));
        }
      }
    }
    if (busy.empty()) return absl::OkStatus();
    if (absl::Now() >= end) {
      return absl::DeadlineExceededError(absl::StrCat(
          "pyscope: finalization went ahead after the drain deadline (",
          absl::FormatDuration(deadline), ") with ", busy.size(),
          " native thread(s) still inside a GILGuard scope: ",
          absl::StrJoin(busy, "; "),
          ". Such a thread is ended if it tries to take the GIL again."));
    }
    absl::SleepFor(pause);
    pause = std::min(pause * 2, absl::Milliseconds(2));
  }
}

void WaitForAttachingThreads() {
  Core& core = GetCore();
  ThreadRecord* self = &ThisThread();
  for (;;) {
    bool any = false;
    {
      CoreLock lock(&core.mu);
      for (ThreadRecord* record : core.records) {
        if (record != self &&
            record->attaching.load(std::memory_order_seq_cst) != 0) {
          any = true;
        }
      }
    }
    if (!any) return;
    absl::SleepFor(absl::Microseconds(100));
  }
}

// Called with the GIL of `interp` (or the main one) held by the ending or
// finalizing thread, which attached by itself: not visible to the analysis.
void DeleteCachedThreadStates(PyInterpreterState* interp,
                              PyThreadState* keep)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  Core& core = GetCore();
  const uint64_t generation = core.generation.load();
  CoreLock lock(&core.mu);
  for (ThreadRecord* record : core.records) {
    if (interp == nullptr &&
        record->inside.load(std::memory_order_acquire) != 0) {
      continue;
    }
    RecordImpl& impl = ImplOf(*record);
    CoreLock owned_lock(&impl.mu);
    for (auto it = impl.owned.begin(); it != impl.owned.end();) {
      const bool match = it->generation == generation &&
                         (interp == nullptr || it->interp == interp) &&
                         it->tstate != keep;
      if (match) {
        PyThreadState_Clear(it->tstate);
        PyThreadState_Delete(it->tstate);
        it = impl.owned.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto it = core.orphans.begin(); it != core.orphans.end();) {
    if (interp == nullptr || it->interp == interp) {
      PyThreadState_Clear(it->tstate);
      PyThreadState_Delete(it->tstate);
      it = core.orphans.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace pyscope::detail

namespace pyscope {

const char* MisuseName(Misuse misuse) {
  switch (misuse) {
    case Misuse::kDestroyedOnOtherThread:
      return "DestroyedOnOtherThread";
    case Misuse::kDestroyedOutOfOrder:
      return "DestroyedOutOfOrder";
    case Misuse::kAllowThreadsWithoutGil:
      return "AllowThreadsWithoutGil";
    case Misuse::kSwapWithoutGil:
      return "SwapWithoutGil";
    case Misuse::kSwapTargetLost:
      return "SwapTargetLost";
    case Misuse::kFinalizeOnOtherThread:
      return "FinalizeOnOtherThread";
    case Misuse::kFinalizeWhileAttached:
      return "FinalizeWhileAttached";
    case Misuse::kSecondRuntime:
      return "SecondRuntime";
    case Misuse::kThreadExitedInsideGuard:
      return "ThreadExitedInsideGuard";
  }
  return "Unknown";
}

MisuseHandler SetMisuseHandler(MisuseHandler handler) {
  return detail::misuse_handler.exchange(handler, std::memory_order_acq_rel);
}

std::vector<AttachedThread> AttachedThreads() {
  detail::Core& core = detail::GetCore();
  std::vector<AttachedThread> result;
  detail::CoreLock lock(&core.mu);
  for (detail::ThreadRecord* record : core.records) {
    if (record->inside.load(std::memory_order_acquire) == 0) continue;
    char name[32] = "";
    pthread_getname_np(
        static_cast<pthread_t>(detail::ImplOf(*record).handle), name,
        sizeof(name));
    result.push_back(AttachedThread{
        record->os_thread_id, name,
        SourceLocation::Current(
            record->site_file.load(std::memory_order_relaxed),
            record->site_line.load(std::memory_order_relaxed),
            record->site_function.load(std::memory_order_relaxed))});
  }
  return result;
}

RuntimeState GetRuntimeState() {
  return static_cast<RuntimeState>(
      detail::GetCore().state.load(std::memory_order_acquire));
}

uint64_t RuntimeGeneration() {
  return detail::GetCore().generation.load(std::memory_order_acquire);
}

}  // namespace pyscope
