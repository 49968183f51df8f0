// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// InterpreterLocal<T>: one C++ value per interpreter and per runtime
// generation, created once under the GIL and destroyed when that
// interpreter ends or the runtime finalizes.
//
//   // A cached Python object, per interpreter: never a stale PyObject*
//   // across sub-interpreters or re-initialization.
//   static pyscope::InterpreterLocal<pyscope::OwnedRef> json_dumps;
//
//   PyObject* Dumps() PYSCOPE_REQUIRES_GIL {
//     return json_dumps.GetOrCreate([] {
//       PyObject* json = PyImport_ImportModule("json");
//       ...
//     }).get();
//   }
//
// What pybind11's gil_safe_call_once_and_store does for one interpreter of
// one runtime, extended to every interpreter (also sub-interpreters with
// their own GIL, and interpreters pyscope did not create) and to
// re-initialization: the value lives in the interpreter's own state
// (PyInterpreterState_GetDict), so CPython drops it when it clears that
// interpreter — at Py_EndInterpreter, or at Py_FinalizeEx for the main one.

#ifndef PYSCOPE_INTERPRETER_LOCAL_H_
#define PYSCOPE_INTERPRETER_LOCAL_H_

#include <cstdint>
#include <exception>
#include <type_traits>
#include <utility>

#include "absl/status/statusor.h"
#include "pyscope/annotations.h"
#include "pyscope/detail/compat.h"
#include "pyscope/detail/export.h"
#include "pyscope/error.h"

namespace pyscope {

// An owned Python reference (Py_XDECREF on destruction, under the GIL of
// the interpreter that drops it). A convenient T for InterpreterLocal.
class OwnedRef {
 public:
  OwnedRef() = default;
  // Takes a new reference (may be null).
  explicit OwnedRef(PyObject* object) noexcept : object_(object) {}
  OwnedRef(OwnedRef&& other) noexcept : object_(other.release()) {}
  OwnedRef& operator=(OwnedRef&& other) noexcept {
    OwnedRef(std::move(other)).swap(*this);
    return *this;
  }
  OwnedRef(const OwnedRef&) = delete;
  OwnedRef& operator=(const OwnedRef&) = delete;
  // Requires the GIL of the object's interpreter when non-null.
  ~OwnedRef() { Py_XDECREF(object_); }

  PyObject* get() const noexcept { return object_; }
  PyObject* release() noexcept {
    PyObject* object = object_;
    object_ = nullptr;
    return object;
  }
  void swap(OwnedRef& other) noexcept { std::swap(object_, other.object_); }
  explicit operator bool() const noexcept { return object_ != nullptr; }

 private:
  PyObject* object_ = nullptr;
};

namespace detail {

// The type-erased core of InterpreterLocal (src/interpreter_local.cc).
struct LocalValueOps {
  // Creates the value; returns null and stores the exception in *error on
  // failure. Called with the GIL held; may release it.
  void* (*create)(void* context, std::exception_ptr* error);
  // Destroys a value; called with the GIL of its interpreter held.
  void (*destroy)(void* value);
};

// A process-unique key for one InterpreterLocal object.
PYSCOPE_API uint64_t NewLocalKey() noexcept;

// The value of `key` in the calling thread's interpreter, or null.
// Requires the GIL.
PYSCOPE_API void* FindLocal(uint64_t key) PYSCOPE_REQUIRES_GIL;

// The value of `key` in the calling thread's interpreter, created with
// `ops.create(context)` if there is none: exactly once per interpreter,
// also when the creator releases the GIL and other threads ask meanwhile
// (they wait, GIL released). kFailedPrecondition without the GIL or when
// the creator asks for the value it is creating; kInternal for a Python
// error; `*error` set when create threw.
PYSCOPE_API absl::StatusOr<void*> FindOrCreateLocal(
    uint64_t key, const LocalValueOps& ops, void* context,
    std::exception_ptr* error) PYSCOPE_REQUIRES_GIL;

// Destroys the value of `key` in the calling thread's interpreter now, if
// there is one. Requires the GIL.
PYSCOPE_API void ResetLocal(uint64_t key) PYSCOPE_REQUIRES_GIL;

}  // namespace detail

// One value of type T per interpreter and runtime generation. T needs no
// default constructor; it is created by the function given to GetOrCreate
// and destroyed, with the GIL of its interpreter held, when that
// interpreter ends (SubInterpreter::End, Py_EndInterpreter) or, for the
// main interpreter, during Py_FinalizeEx. The next runtime starts with no
// values. Destroying the InterpreterLocal object itself does not destroy
// the values (they are dropped with their interpreters); the object may be
// a function-local static, also one that outlives the runtime.
//
// Thread-safety: every member requires the GIL of the calling thread's
// interpreter (a GILGuard in scope, or code called from Python); values of
// different interpreters are independent. A returned reference stays valid
// while the interpreter lives and Reset() is not called.
template <typename T>
class InterpreterLocal {
 public:
  // An empty slot in every interpreter; values are created on first Get().
  InterpreterLocal() : key_(detail::NewLocalKey()) {}
  InterpreterLocal(const InterpreterLocal&) = delete;
  InterpreterLocal& operator=(const InterpreterLocal&) = delete;

  // The value for the calling thread's interpreter, created by `make()`
  // (returning a T) the first time, exactly once per interpreter: if `make`
  // releases the GIL (an import may), other threads asking meanwhile wait
  // for it. An exception `make` throws propagates and no value is stored.
  // Throws pyscope::Error for a recursive call from inside `make` or
  // without the GIL.
  template <typename Make>
  T& GetOrCreate(Make&& make) PYSCOPE_REQUIRES_GIL {
    if (void* found = detail::FindLocal(key_)) return *static_cast<T*>(found);
    std::exception_ptr error;
    absl::StatusOr<void*> value =
        detail::FindOrCreateLocal(key_, OpsFor<Make>(), &make, &error);
    if (error) std::rethrow_exception(error);
    if (!value.ok()) throw Error(value.status());
    return *static_cast<T*>(*value);
  }

  // The value for the calling thread's interpreter, or null if none was
  // created there.
  T* Get() PYSCOPE_REQUIRES_GIL {
    return static_cast<T*>(detail::FindLocal(key_));
  }

  // Destroys the calling thread's interpreter's value now (the next
  // GetOrCreate creates a new one).
  void Reset() PYSCOPE_REQUIRES_GIL { detail::ResetLocal(key_); }

 private:
  template <typename Make>
  static const detail::LocalValueOps& OpsFor() {
    static const detail::LocalValueOps ops = {
        [](void* context, std::exception_ptr* error) -> void* {
          try {
            return new T(
                (*static_cast<std::remove_reference_t<Make>*>(context))());
          } catch (...) {
            *error = std::current_exception();
            return nullptr;
          }
        },
        [](void* value) { delete static_cast<T*>(value); }};
    return ops;
  }

  const uint64_t key_;
};

}  // namespace pyscope

#endif  // PYSCOPE_INTERPRETER_LOCAL_H_
