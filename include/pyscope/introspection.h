// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Looking at a running host: CPython's interpreters and thread states as
// C++ ranges, and a snapshot of pyscope's own live guards, per thread,
// printable in one call (for a host that seems stuck: who holds what, where
// it was taken, for how long).
//
//   {
//     pyscope::GILGuard gil;
//     for (PyInterpreterState* interp : pyscope::Interpreters()) {
//       for (PyThreadState* tstate : pyscope::ThreadStates(interp)) { ... }
//     }
//   }
//   std::fputs(pyscope::DescribeLiveGuards().c_str(), stderr);  // any thread

#ifndef PYSCOPE_INTROSPECTION_H_
#define PYSCOPE_INTROSPECTION_H_

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "pyscope/annotations.h"
#include "pyscope/detail/compat.h"
#include "pyscope/detail/export.h"
#include "pyscope/source_location.h"

namespace pyscope {

namespace detail {

// A forward range over a CPython linked list: `Next` gives the element
// after one (PyInterpreterState_Next, PyThreadState_Next).
template <typename T, T* (*Next)(T*)>
class LinkedRange {
 public:
  class iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = T*;
    using difference_type = std::ptrdiff_t;
    using pointer = T* const*;
    using reference = T* const&;

    iterator() = default;
    explicit iterator(T* at) : at_(at) {}
    T* const& operator*() const { return at_; }
    iterator& operator++() PYSCOPE_REQUIRES_GIL {
      at_ = Next(at_);
      return *this;
    }
    iterator operator++(int) PYSCOPE_REQUIRES_GIL {
      iterator before = *this;
      at_ = Next(at_);
      return before;
    }
    bool operator==(const iterator& other) const { return at_ == other.at_; }
    bool operator!=(const iterator& other) const { return at_ != other.at_; }

   private:
    T* at_ = nullptr;
  };

  explicit LinkedRange(T* head) : head_(head) {}
  iterator begin() const { return iterator(head_); }
  iterator end() const { return iterator(); }
  bool empty() const { return head_ == nullptr; }

 private:
  T* head_;
};

}  // namespace detail

// Every interpreter of the runtime, the main one first
// (PyInterpreterState_Head / PyInterpreterState_Next).
using InterpreterRange =
    detail::LinkedRange<PyInterpreterState, &PyInterpreterState_Next>;
// The thread states of one interpreter, newest first
// (PyInterpreterState_ThreadHead / PyThreadState_Next).
using ThreadStateRange =
    detail::LinkedRange<PyThreadState, &PyThreadState_Next>;

// The interpreters of the runtime. Requires the GIL. Iterate while holding
// it and keep no pointer beyond it: another thread may end an interpreter.
inline InterpreterRange Interpreters() PYSCOPE_REQUIRES_GIL {
  return InterpreterRange(PyInterpreterState_Head());
}

// The thread states of `interp`. Requires the GIL of `interp` (be attached
// to it: from 3.12 an interpreter with its own GIL changes its list under
// that GIL only). Native threads create and delete thread states without
// any GIL before 3.12 (CPython locks the list internally, not for this
// iteration), so use what you find only while you hold the GIL and do not
// keep pointers to other threads' states.
inline ThreadStateRange ThreadStates(PyInterpreterState* interp)
    PYSCOPE_REQUIRES_GIL {
  return ThreadStateRange(PyInterpreterState_ThreadHead(interp));
}

// One thread with pyscope guard scopes open, as the compiled core tracks
// it.
//
// What is listed: every OS thread that is inside at least one pyscope scope
// (GILGuard, AllowThreads, ThreadStateSwap and the extras' scopes built on
// them), including threads that exited while guards they opened were still
// alive (`exited`). For each: its id and name, how many scopes are open, the
// state of the innermost one, and — when the outermost scope is a GILGuard
// that attached the thread from no thread state (a native thread) — where
// that guard was created and how long ago it attached.
//
// What is not: each nested scope separately (only their number), the kinds
// and sites of scopes other than that outermost cold GILGuard (a guard
// nested in running Python code, a borrowed attachment, AllowThreads), and
// threads that hold a GIL without pyscope (raw PyGILState_Ensure, Python
// threads outside every pyscope scope).
struct LiveGuard {
  uint64_t os_thread_id = 0;  // gettid()
  std::string thread_name;    // may be empty
  int depth = 0;              // pyscope scopes open on the thread
  // The innermost scope holds a GIL (a GILGuard, or a ThreadStateSwap)...
  bool holds_gil = false;
  // ...or has released it (AllowThreads), or waits to take it back.
  bool gil_released = false;
  // Neither: the thread is attaching (waiting for the GIL) from no thread
  // state.
  bool attaching = false;
  // The interpreter of the innermost scope's thread state (0: main), or -1
  // when pyscope did not create that thread state and cannot name its
  // interpreter without touching it.
  int64_t interpreter_id = -1;
  // "GILGuard" when the outermost scope attached the thread from cold; ""
  // otherwise (the fields below are then empty).
  const char* outermost_kind = "";
  SourceLocation outermost_site;
  // Since that guard began attaching (time spent waiting for the GIL
  // included).
  absl::Duration held_for = absl::ZeroDuration();
  // The thread exited with these scopes open (the guards leaked).
  bool exited = false;
};

// A snapshot of the threads inside pyscope scopes. Thread-safe, callable
// from any thread (with or without the GIL, also from a signal-free
// watchdog or a debugger); it stops no thread, so the fields of a thread
// that is changing state may be a moment apart from each other, and the
// result is stale as soon as it returns.
PYSCOPE_API std::vector<LiveGuard> LiveGuards();

// LiveGuards() as text, one line per thread, then one line per live
// sub-interpreter (its id, how many threads are inside, whether it is
// ending), and the runtime's state. For logs and deadlock reports.
PYSCOPE_API std::string DescribeLiveGuards();

}  // namespace pyscope

#endif  // PYSCOPE_INTROSPECTION_H_
