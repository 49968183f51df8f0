// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// InterpreterLocal's core: values live in capsules in the interpreter's own
// dict (PyInterpreterState_GetDict), which CPython clears when it clears the
// interpreter (Py_EndInterpreter, Py_FinalizeEx), so a value never outlives
// its interpreter and never crosses into another runtime.

#include "pyscope/interpreter_local.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <vector>

#include "absl/strings/str_cat.h"
#include "attach.h"
#include "thread_state_cache.h"

namespace pyscope::detail {
namespace {

constexpr char kCapsuleName[] = "pyscope.InterpreterLocal";

struct Holder {
  void* value;
  void (*destroy)(void*);
};

// Bumped whenever a value is destroyed, so that the one-entry per-thread
// cache below never returns a destroyed value.
std::atomic<uint64_t> destroyed_epoch{0};

struct Cached {
  uint64_t key = 0;
  PyInterpreterState* interp = nullptr;
  uint64_t epoch = 0;
  void* value = nullptr;
};
thread_local Cached cached;

// Values being created: one creator per (key, interpreter); others wait.
struct Creating {
  uint64_t key;
  PyInterpreterState* interp;
  const ThreadRecord* creator;
};
struct CreationTable {
  std::mutex mu;
  std::condition_variable done;
  std::vector<Creating> entries;
};
CreationTable& Table() {
  static CreationTable* const table = new CreationTable;
  return *table;
}

// Called by CPython, with the interpreter's GIL held, when it clears the
// interpreter's dict.
void DestroyCapsule(PyObject* capsule) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  auto* holder =
      static_cast<Holder*>(PyCapsule_GetPointer(capsule, kCapsuleName));
  if (holder == nullptr) {
    PyErr_Clear();
    return;
  }
  destroyed_epoch.fetch_add(1, std::memory_order_acq_rel);
  holder->destroy(holder->value);
  delete holder;
}

PyObject* KeyString(uint64_t key) PYSCOPE_REQUIRES_GIL {
  return PyUnicode_FromString(
      absl::StrCat("pyscope.InterpreterLocal.", key).c_str());
}

// The calling thread's interpreter, or null when it holds no GIL.
PyInterpreterState* CurrentInterpreter() {
  PyThreadState* tstate = AttachedHere(ThisRecord());
  return tstate == nullptr ? nullptr : PyThreadState_GetInterpreter(tstate);
}

void* Lookup(PyInterpreterState* interp, uint64_t key) PYSCOPE_REQUIRES_GIL {
  const uint64_t epoch = destroyed_epoch.load(std::memory_order_acquire);
  if (cached.key == key && cached.interp == interp && cached.epoch == epoch) {
    return cached.value;
  }
  PyObject* dict = PyInterpreterState_GetDict(interp);  // borrowed
  if (dict == nullptr) return nullptr;
  PyObject* name = KeyString(key);
  if (name == nullptr) {
    PyErr_Clear();
    return nullptr;
  }
  // PyDict_GetItem leaves an exception the caller has set alone.
  PyObject* capsule = PyDict_GetItem(dict, name);  // borrowed
  Py_DECREF(name);
  if (capsule == nullptr) return nullptr;
  auto* holder =
      static_cast<Holder*>(PyCapsule_GetPointer(capsule, kCapsuleName));
  if (holder == nullptr) {
    PyErr_Clear();
    return nullptr;
  }
  cached = Cached{key, interp, epoch, holder->value};
  return holder->value;
}

absl::Status Store(PyInterpreterState* interp, uint64_t key, void* value,
                   void (*destroy)(void*)) PYSCOPE_REQUIRES_GIL {
  PyObject* dict = PyInterpreterState_GetDict(interp);
  if (dict == nullptr) {
    destroy(value);
    return absl::InternalError(
        "pyscope: InterpreterLocal: the interpreter has no state dict "
        "(PyInterpreterState_GetDict returned null; is it being cleared?)");
  }
  auto* holder = new Holder{value, destroy};
  PyObject* capsule = PyCapsule_New(holder, kCapsuleName, &DestroyCapsule);
  if (capsule == nullptr) {
    destroy(value);
    delete holder;
    return PythonError::FetchAndClear().status();
  }
  PyObject* name = KeyString(key);
  const int rc = name == nullptr ? -1 : PyDict_SetItem(dict, name, capsule);
  Py_XDECREF(name);
  Py_DECREF(capsule);  // on failure this destroys the value
  if (rc != 0) return PythonError::FetchAndClear().status();
  return absl::OkStatus();
}

}  // namespace

uint64_t NewLocalKey() noexcept {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

void* FindLocal(uint64_t key) {
  PyInterpreterState* interp = CurrentInterpreter();
  return interp == nullptr ? nullptr : Lookup(interp, key);
}

// Waits with the GIL released (the creator may need it), hence attaching
// and detaching by itself.
absl::StatusOr<void*> FindOrCreateLocal(
    uint64_t key, const LocalValueOps& ops, void* context,
    std::exception_ptr* error) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  Record& record = ThisRecord();
  PyThreadState* tstate = AttachedHere(record);
  if (tstate == nullptr) {
    return absl::FailedPreconditionError(
        "pyscope: InterpreterLocal used without the GIL (open a GILGuard "
        "first)");
  }
  PyInterpreterState* interp = PyThreadState_GetInterpreter(tstate);
  CreationTable& table = Table();
  const auto same = [&](const Creating& entry) {
    return entry.key == key && entry.interp == interp;
  };
  for (;;) {
    if (void* found = Lookup(interp, key)) return found;
    std::unique_lock<std::mutex> lock(table.mu);
    auto it = std::find_if(table.entries.begin(), table.entries.end(), same);
    if (it == table.entries.end()) {
      table.entries.push_back(Creating{key, interp, &record});
      break;
    }
    if (it->creator == &record) {
      return absl::FailedPreconditionError(
          "pyscope: InterpreterLocal::GetOrCreate called again from inside "
          "the function creating the value");
    }
    // Another thread is creating it: wait with the GIL released.
    PyEval_SaveThread();
    table.done.wait(lock, [&] {
      return std::none_of(table.entries.begin(), table.entries.end(), same);
    });
    lock.unlock();
    PyEval_RestoreThread(tstate);
  }
  void* value = ops.create(context, error);
  absl::Status stored = absl::OkStatus();
  if (value != nullptr) {
    stored = Store(interp, key, value, ops.destroy);
  } else if (!*error) {
    stored = absl::InternalError("pyscope: InterpreterLocal: no value made");
  }
  {
    std::lock_guard<std::mutex> lock(table.mu);
    table.entries.erase(
        std::find_if(table.entries.begin(), table.entries.end(), same));
  }
  table.done.notify_all();
  if (*error) return nullptr;
  if (!stored.ok()) return stored;
  return value;
}

void ResetLocal(uint64_t key) {
  PyInterpreterState* interp = CurrentInterpreter();
  if (interp == nullptr) return;
  PyObject* dict = PyInterpreterState_GetDict(interp);
  PyObject* name = dict == nullptr ? nullptr : KeyString(key);
  if (name == nullptr) {
    PyErr_Clear();
    return;
  }
  if (PyDict_GetItem(dict, name) != nullptr &&
      PyDict_DelItem(dict, name) != 0) {
    PyErr_Clear();
  }
  Py_DECREF(name);
}

}  // namespace pyscope::detail
