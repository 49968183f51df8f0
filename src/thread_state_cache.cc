// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0

#include "thread_state_cache.h"

#include <pthread.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "interpreter_registry.h"
#include "misuse.h"

namespace pyscope::detail {
__thread ThreadRecord* this_thread_record
    __attribute__((tls_model("initial-exec"))) = nullptr;

ThreadRecord& NewThreadRecord() noexcept {
  return ThreadStateCache::Get().ThisThreadRecord();
}

std::string DescribeThread(const Record& record) {
  const std::string name = record.exited.load(std::memory_order_acquire)
                               ? std::string(record.exit_name)
                               : platform::ThreadName(record.slot.who());
  return platform::DescribeThread(record.slot.who().os_thread_id, name);
}

ThreadStateCache& ThreadStateCache::Get() {
  // Never destroyed: thread-exit hooks may run after static destruction.
  static ThreadStateCache* const cache = new ThreadStateCache;
  return *cache;
}

// A thread's record lives on the heap and is retired by a thread-exit slot
// (platform::ThreadExitSlot), not by a thread_local object: every C++
// thread_local destructor of the thread runs before it, so a guard in any
// thread_local destructor finds the record and its thread states alive,
// whatever order the thread_local objects were constructed in. A guard used
// by another library's thread-exit hook after the retirement gets a new
// record, which is retired in turn. The main thread's record is never
// retired, so a ScopedRuntime in a static object finalizes normally after
// main() returns.
Record& ThreadStateCache::ThisThreadRecord() {
  static platform::ThreadExitSlot* const exit_slot =
      new platform::ThreadExitSlot(&ThreadStateCache::Retire);
  auto* record = new Record(platform::ThisThreadIdentity());
  {
    CoreLock lock(&mu_);
    records_.push_back(record);
  }
  Gate::Get().Register(record->slot);
  exit_slot->Set(record);
  this_thread_record = record;
  return *record;
}

void ThreadStateCache::ForEachRecord(absl::FunctionRef<void(Record&)> visit) {
  CoreLock lock(&mu_);
  for (Record* record : records_) visit(*record);
  for (Record* record : exited_) visit(*record);
}

void ThreadStateCache::Retire(void* pointer) {
  ThreadStateCache& cache = Get();
  auto* record = static_cast<Record*>(pointer);
  const bool scopes_open = record->level > 0;
  if (scopes_open) cache.RecoverFromExitInsideScopes(*record);
  cache.FreeAtThreadExit(*record);
  this_thread_record = nullptr;
  Gate::Get().Unregister(record->slot);
  {
    CoreLock lock(&cache.mu_);
    cache.records_.erase(
        std::find(cache.records_.begin(), cache.records_.end(), record));
    if (scopes_open) cache.exited_.push_back(record);
  }
  if (!scopes_open) delete record;
}

// A thread is exiting with `record.level` guard scopes still open (a guard
// kept in a std::optional or an object that outlives the thread): reports
// Misuse::kThreadExitedInsideGuard and, if the handler returns, detaches
// the thread so that the runtime stays usable: a thread state pyscope
// created that is still attached is cleared and deleted (which releases its
// GIL), a borrowed one is detached; the thread leaves every sub-interpreter
// it was inside and the drain stops waiting for it. The scopes stay open on
// the record, so the leaked guards are reported (and do nothing) when they
// are destroyed later.
void ThreadStateCache::RecoverFromExitInsideScopes(Record& record)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {  // detaches by itself
  const std::string detail = absl::StrCat(
      "The thread exited with ", record.level,
      " guard scope(s) still open (the guard was kept in a std::optional, a "
      "heap object or another object that outlived the thread's scope). A "
      "guard must end on its own thread before the thread exits: keep it a "
      "local variable of the block it protects. If the misuse handler "
      "returns, pyscope detaches the thread (deleting the thread state it "
      "created for it) and the leaked guards do nothing when destroyed.");
  ReportMisuse(Misuse::kThreadExitedInsideGuard, GuardKind::kGILGuard,
               record.slot.site(), detail.c_str());
  const std::string name = platform::ThreadName(record.slot.who());
  std::snprintf(record.exit_name, sizeof(record.exit_name), "%s", name.c_str());
  record.exited.store(true, std::memory_order_release);
  PyThreadState* current = compat::CurrentThreadStateUnchecked();
  if (record.holding && current != nullptr && current == record.tstate) {
    bool owned = false;
    {
      CoreLock lock(&record.mu);
      for (auto it = record.owned.begin(); it != record.owned.end(); ++it) {
        if (it->tstate == current) {
          if (it->keeps_gilstate) compat::KeepGilStateBinding(current, false);
          record.owned.erase(it);
          owned = true;
          break;
        }
      }
      if (record.sub_tstate == current) record.sub_tstate = nullptr;
      if (record.main_tstate == current) record.main_tstate = nullptr;
    }
    if (owned) {
      PyThreadState_Clear(current);
      PyThreadState_DeleteCurrent();
    } else {
      PyEval_SaveThread();
    }
  }
  // Leave the sub-interpreters it was inside (innermost first).
  const int tracked = std::min(record.entered_count, Record::kTrackedEntries);
  for (int i = tracked - 1; i >= 0; --i) {
    InterpControl* control =
        record.entered[i].exchange(nullptr, std::memory_order_relaxed);
    if (control != nullptr) control->Leave(nullptr);
  }
  record.entered_count = 0;
  record.holding = false;
  record.tstate = nullptr;
  record.slot.ForgetColdScopes();
}

// Frees the exiting thread's cached thread states where the interpreter
// that owns them still runs (otherwise CPython freed them, or the thread
// ending that interpreter deletes them). Attaches by itself, which Clang's
// analysis cannot follow (docs/compile_time.md).
void ThreadStateCache::FreeAtThreadExit(Record& record)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  Gate& gate = Gate::Get();
  InterpreterRegistry& registry = InterpreterRegistry::Get();
  for (;;) {
    OwnedThreadState entry{};
    InterpControl* control = nullptr;
    {
      // Lock order: the cache, a record, the registry, a control block.
      CoreLock cache_lock(&mu_);
      CoreLock lock(&record.mu);
      if (record.owned.empty()) return;
      PyInterpreterState* main = gate.main_interpreter();
      // Sub-interpreter states first: their interpreters need the main one.
      auto it = std::find_if(record.owned.begin(), record.owned.end(),
                             [main](const OwnedThreadState& owned) {
                               return owned.interp != main;
                             });
      if (it == record.owned.end()) it = record.owned.begin();
      entry = *it;
      record.owned.erase(it);
      if (entry.generation != gate.generation()) continue;  // freed
      if (entry.interp != main) {
        switch (registry.ForThreadExit(entry.interp, &record, &control)) {
          case InterpreterRegistry::ExitAction::kGone:
            continue;
          case InterpreterRegistry::ExitAction::kOrphan:
            orphans_.push_back(entry);
            control->Leave(nullptr);
            continue;
          case InterpreterRegistry::ExitAction::kDelete:
            break;
        }
      }
    }
    bool deleted = false;
    {
      Gate::Admission admission(record.slot);
      if (admission.state() == Gate::State::kRunning &&
          !admission.past_point_of_no_return() &&
          admission.generation() == entry.generation) {
        if (entry.keeps_gilstate) {
          compat::KeepGilStateBinding(entry.tstate, false);
        }
        PyEval_RestoreThread(entry.tstate);
        PyThreadState_Clear(entry.tstate);
        PyThreadState_DeleteCurrent();
        deleted = true;
      }
    }
    if (control != nullptr) {
      // The runtime is finalizing: a sub-interpreter's state is left to the
      // thread that ends the interpreter (otherwise it would count as a
      // thread state pyscope did not create, and the end would be
      // refused). The thread is still counted in, so that end has not
      // started deleting orphans yet.
      if (!deleted) {
        CoreLock lock(&mu_);
        orphans_.push_back(entry);
      }
      control->Leave(nullptr);
    }
  }
}

PyThreadState* ThreadStateCache::FindOrCreate(Record& record,
                                              PyInterpreterState* interp,
                                              uint64_t generation) {
  PyInterpreterState* main = Gate::Get().main_interpreter();
  // Fast: the main-interpreter state this thread used before under this
  // runtime.
  if (interp == main && record.main_generation == generation &&
      record.main_tstate != nullptr) {
    return record.main_tstate;
  }
  PyThreadState* known = PyGILState_GetThisThreadState();
  if (interp == main && known != nullptr &&
      PyThreadState_GetInterpreter(known) == interp) {
    return known;
  }
  if (interp != main && known == nullptr &&
      FindOrCreate(record, main, generation) == nullptr) {
    return nullptr;
  }
  CoreLock lock(&record.mu);
  for (const OwnedThreadState& owned : record.owned) {
    if (owned.interp == interp && owned.generation == generation) {
      return owned.tstate;
    }
  }
  // Drop entries of finalized runtimes (CPython freed them) before adding.
  record.owned.erase(std::remove_if(record.owned.begin(), record.owned.end(),
                                    [generation](const OwnedThreadState& o) {
                                      return o.generation != generation;
                                    }),
                     record.owned.end());
  // "The global interpreter lock need not be held" (PyThreadState_New docs).
  // The new state counts as created by PyGILState (gilstate_counter = 1 in
  // every supported version), so a host's PyGILState_Ensure/Release pair on
  // this thread never deletes it under us.
  PyThreadState* created = PyThreadState_New(interp);
  if (created != nullptr) {
    record.owned.push_back({interp, generation, created});
    if (interp == main) {
      record.main_tstate = created;
      record.main_generation = generation;
    }
  }
  return created;
}

PyThreadState* ThreadStateCache::ForSubInterpreter(Record& record,
                                                   InterpControl& control,
                                                   uint64_t generation) {
  const uint64_t epoch = control.epoch.load(std::memory_order_acquire);
  if (record.sub_tstate != nullptr && record.sub_uid == control.uid &&
      record.sub_epoch == epoch && control.generation == generation) {
    return record.sub_tstate;
  }
  PyInterpreterState* interp = control.interp.load(std::memory_order_acquire);
  PyThreadState* tstate = nullptr;
  {
    CoreLock lock(&record.mu);
    for (const OwnedThreadState& owned : record.owned) {
      if (owned.interp == interp && owned.generation == generation) {
        tstate = owned.tstate;
      }
    }
  }
  if (tstate == nullptr) {
    // The thread's main-interpreter state first, so that CPython's
    // PyGILState binding of the thread starts on the main interpreter.
    if (PyGILState_GetThisThreadState() == nullptr &&
        FindOrCreate(record, Gate::Get().main_interpreter(), generation) ==
            nullptr) {
      return nullptr;
    }
    tstate = PyThreadState_New(interp);
    if (tstate == nullptr) return nullptr;
    const bool keep =
        !control.rebind_gilstate && compat::kCanKeepGilStateBinding;
    if (keep) compat::KeepGilStateBinding(tstate, true);
    CoreLock lock(&record.mu);
    record.owned.push_back({interp, generation, tstate, keep});
  }
  record.sub_uid = control.uid;
  record.sub_epoch = epoch;
  record.sub_tstate = tstate;
  return tstate;
}

std::vector<std::string> ThreadStateCache::DescribeThreadsInside(
    const InterpControl& control) {
  std::vector<std::string> threads;
  CoreLock lock(&mu_);
  for (Record* record : records_) {
    if (record->IsInside(&control)) threads.push_back(DescribeThread(*record));
  }
  return threads;
}

void ThreadStateCache::Adopt(Record& record, PyInterpreterState* interp,
                             PyThreadState* tstate, uint64_t generation,
                             bool keeps_gilstate) {
  if (keeps_gilstate) compat::KeepGilStateBinding(tstate, true);
  CoreLock lock(&record.mu);
  record.owned.push_back({interp, generation, tstate, keeps_gilstate});
}

PyThreadState* ThreadStateCache::TakeOwn(Record& record,
                                         PyInterpreterState* interp,
                                         uint64_t generation,
                                         bool* keeps_gilstate) {
  CoreLock lock(&record.mu);
  for (auto it = record.owned.begin(); it != record.owned.end(); ++it) {
    if (it->interp == interp && it->generation == generation) {
      PyThreadState* tstate = it->tstate;
      *keeps_gilstate = it->keeps_gilstate;
      if (record.sub_tstate == tstate) record.sub_tstate = nullptr;
      record.owned.erase(it);
      return tstate;
    }
  }
  *keeps_gilstate = false;
  return nullptr;
}

bool ThreadStateCache::Owns(Record& record, PyThreadState* tstate) {
  CoreLock lock(&record.mu);
  for (const OwnedThreadState& owned : record.owned) {
    if (owned.tstate == tstate) return true;
  }
  return false;
}

void ThreadStateCache::DeleteFor(PyInterpreterState* interp,
                                 PyThreadState* keep, uint64_t generation) {
  CoreLock lock(&mu_);
  for (Record* record : records_) {
    CoreLock owned_lock(&record->mu);
    for (auto it = record->owned.begin(); it != record->owned.end();) {
      if (it->generation == generation && it->interp == interp &&
          it->tstate != keep) {
        if (it->keeps_gilstate) compat::KeepGilStateBinding(it->tstate, false);
        PyThreadState_Clear(it->tstate);
        PyThreadState_Delete(it->tstate);
        it = record->owned.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto it = orphans_.begin(); it != orphans_.end();) {
    if (it->interp == interp) {
      if (it->keeps_gilstate) compat::KeepGilStateBinding(it->tstate, false);
      PyThreadState_Clear(it->tstate);
      PyThreadState_Delete(it->tstate);
      it = orphans_.erase(it);
    } else {
      ++it;
    }
  }
}

int ThreadStateCache::CountForeign(PyInterpreterState* interp,
                                   PyThreadState* keep) {
  std::vector<PyThreadState*> ours;
  {
    CoreLock lock(&mu_);
    for (Record* record : records_) {
      CoreLock owned_lock(&record->mu);
      for (const OwnedThreadState& owned : record->owned) {
        if (owned.interp == interp) ours.push_back(owned.tstate);
      }
    }
    for (const OwnedThreadState& orphan : orphans_) {
      if (orphan.interp == interp) ours.push_back(orphan.tstate);
    }
  }
  int foreign = 0;
  for (PyThreadState* t = PyInterpreterState_ThreadHead(interp); t != nullptr;
       t = PyThreadState_Next(t)) {
    if (t == keep) continue;
    if (std::find(ours.begin(), ours.end(), t) == ours.end()) ++foreign;
  }
  return foreign;
}

bool ThreadStateCache::LockForFork(int patience_ms)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  fork_locked_.clear();
  fork_missed_.clear();
  fork_locked_cache_ = LockWithin(mu_, patience_ms);
  if (!fork_locked_cache_) return false;  // the records cannot be listed
  for (const std::vector<Record*>* list : {&records_, &exited_}) {
    for (Record* record : *list) {
      (LockWithin(record->mu, patience_ms) ? fork_locked_ : fork_missed_)
          .push_back(&record->mu);
    }
  }
  return fork_missed_.empty();
}

void ThreadStateCache::UnlockAfterFork(bool in_child)
    ABSL_NO_THREAD_SAFETY_ANALYSIS {
  for (CoreMutex* mu : fork_locked_) mu->Unlock();
  if (in_child) {
    for (CoreMutex* mu : fork_missed_) RenewInForkChild(*mu);
  }
  if (fork_locked_cache_) {
    mu_.Unlock();
  } else if (in_child) {
    RenewInForkChild(mu_);
  }
  fork_locked_.clear();
  fork_missed_.clear();
  fork_locked_cache_ = false;
}

void ThreadStateCache::RetireOtherThreadsAfterFork(Record& survivor) {
  CoreLock lock(&mu_);
  for (auto it = records_.begin(); it != records_.end();) {
    Record* record = *it;
    if (record == &survivor) {
      ++it;
      continue;
    }
    // Its name cannot be read any more (the thread is gone).
    std::snprintf(record->exit_name, sizeof(record->exit_name), "%s",
                  "not in this fork child");
    record->exited.store(true, std::memory_order_release);
    record->slot.ForgetColdScopes();
    {
      CoreLock owned_lock(&record->mu);
      orphans_.insert(orphans_.end(), record->owned.begin(),
                      record->owned.end());
      record->owned.clear();
      record->main_tstate = nullptr;
    }
    exited_.push_back(record);
    it = records_.erase(it);
  }
}

void ThreadStateCache::ForgetFreedStatesAfterFork(Record& survivor) {
  CoreLock lock(&mu_);
  orphans_.clear();
  PyInterpreterState* main = Gate::Get().main_interpreter();
  CoreLock owned_lock(&survivor.mu);
  survivor.owned.erase(
      std::remove_if(survivor.owned.begin(), survivor.owned.end(),
                     [main](const OwnedThreadState& owned) {
                       return owned.interp != main;
                     }),
      survivor.owned.end());
}

}  // namespace pyscope::detail
