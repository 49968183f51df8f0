// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// The Gate: the runtime's state machine and the admission of native
// threads into it.

#ifndef PYSCOPE_SRC_GATE_H_
#define PYSCOPE_SRC_GATE_H_

#include <atomic>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "lock.h"
#include "platform.h"
#include "pyscope/detail/compat.h"
#include "pyscope/detail/core.h"
#include "pyscope/source_location.h"

namespace pyscope::detail {

// The state of the runtime pyscope manages, and who may attach to it.
//
// States: kUninitialized -> kRunning -> kFinalizing -> kFinalized, and from
// kFinalized back to kRunning when a new runtime starts. Every start and
// every end increments the generation, so a thread state cached under one
// runtime is never used under the next. Inside kFinalizing, the point of
// no return is where Py_FinalizeEx is about to run: from there on no thread
// may start re-attaching a thread state that Py_FinalizeEx frees.
//
// Admission (why no thread attaches into a runtime that is finalizing): a
// thread about to attach marks its Slot "attaching" (an Admission) and then
// reads the state; the finalizer stores the new state and then reads every
// slot's mark. With a full fence between each side's store and its load,
// at least one side sees the other: the thread sees the closed gate and
// backs out, or the finalizer sees the thread and waits for it to finish
// attaching. Attaching is frequent and finalizing rare, so the fences are
// asymmetric (detail::AttachFence / platform::HeavyFence): with membarrier(2)
// the attach side pays a compiler fence only, and the finalizer makes every
// running thread execute a full barrier. The same handshake on the point of
// no return keeps re-attachments (AllowThreads' destructor) out of
// Py_FinalizeEx.
//
// This class is the only writer of that state (published in
// detail::gate_words for the headers' inline paths). runtime.cc drives the
// transitions; the attach paths read the state through an Admission or,
// inline, with the same handshake (detail::AttachCachedFast, ReattachFast).
class Gate {
 public:
  enum class State : int { kUninitialized, kRunning, kFinalizing, kFinalized };

  // One per thread (in its record): its identity, and its side of the
  // handshake (the admission mark, the cold GILGuard scopes the drain waits
  // for, with the site of the outermost), which the headers' fast paths
  // write too (detail::AdmissionSlot).
  class Slot {
   public:
    Slot(platform::ThreadIdentity who, AdmissionSlot& words)
        : who_(who), words_(words) {}
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;

    const platform::ThreadIdentity& who() const { return who_; }

    // Owner thread only.
    void EnterColdScope(const SourceLocation& where) {
      words_.EnterColdScope(where);
    }
    void LeaveColdScope() { words_.LeaveColdScope(); }
    // The thread exited inside its cold scopes: stop waiting for it.
    void ForgetColdScopes() {
      words_.inside.store(0, std::memory_order_release);
    }

    // Where the outermost cold scope was created (or an empty location).
    SourceLocation site() const;
    bool inside() const {
      return words_.inside.load(std::memory_order_acquire) != 0;
    }
    // When the outermost cold scope attached (platform::MonotonicNanos()),
    // for the live-guards snapshot; meaningful while inside().
    int64_t entered_at_ns() const {
      return words_.entered_at_ns.load(std::memory_order_relaxed);
    }

   private:
    friend class Gate;
    const platform::ThreadIdentity who_;
    AdmissionSlot& words_;
  };

  // Marks `slot` as attaching for its lifetime: the finalizer does not
  // pass the drain or the point of no return while a thread is between
  // the check of the state and the end of its attach call. Read the state
  // through it, and keep it alive across the attaching call
  // (PyEval_RestoreThread). Stack-only.
  class Admission {
   public:
    explicit Admission(Slot& slot) : slot_(slot) {
      slot_.words_.attaching.store(1, std::memory_order_relaxed);
      AttachFence();
    }
    ~Admission() { slot_.words_.attaching.store(0, std::memory_order_release); }
    Admission(const Admission&) = delete;
    Admission& operator=(const Admission&) = delete;

    State state() const;
    bool past_point_of_no_return() const;
    uint64_t generation() const;
    // Whether Py_FinalizeEx freed the thread states of `generation`.
    bool Freed(uint64_t generation) const;

   private:
    Slot& slot_;
  };

  static Gate& Get();

  // --- Reads, from any thread. ---
  State state() const {
    return static_cast<State>(gate_words.state.load(std::memory_order_acquire));
  }
  uint64_t generation() const {
    return gate_words.generation.load(std::memory_order_acquire);
  }
  // The main interpreter of the running (or finalizing) runtime.
  PyInterpreterState* main_interpreter() const {
    return main_.load(std::memory_order_acquire);
  }
  bool past_point_of_no_return() const {
    return gate_words.past_point_of_no_return.load(std::memory_order_acquire);
  }
  // Whether `slot` is the finalizing thread's (kFinalizing only): it may
  // still attach while the exit callbacks run.
  bool IsFinalizer(const Slot& slot) const;
  // The refusal a cold attachment gets in `state`.
  static absl::Status RefusalFor(State state);

  // --- Transitions, on the runtime's own thread. ---
  // kUninitialized or kFinalized -> kRunning under a new generation,
  // returned.
  uint64_t Open(PyInterpreterState* main);
  // kRunning -> kFinalizing: cold attachments are refused from here on.
  // `finalizer` is the finalizing thread's slot.
  void Close(Slot& finalizer);
  // Waits until no other thread is attaching or inside a cold scope, up to
  // `deadline`; kDeadlineExceeded names the threads still inside.
  absl::Status Drain(absl::Duration deadline);
  // From here on no re-attachment of a thread state Py_FinalizeEx frees
  // may start; returns once no thread is in the middle of attaching.
  void PassPointOfNoReturn();
  // Returns once no other thread is in the middle of attaching.
  void WaitForAttaching();
  // The point of no return of a finalization pyscope did not run (a raw
  // Py_FinalizeEx, noticed from its Py_AtExit hook): the same mark as
  // PassPointOfNoReturn, without waiting for threads in the middle of
  // attaching (CPython leaves those blocked on its freed GIL for good).
  void MarkPastPointOfNoReturn();
  // Py_FinalizeEx returned: this generation's thread states are freed.
  void MarkFreed();
  // kFinalizing -> kFinalized, under a new generation.
  void Finish();

  // --- Slots. ---
  void Register(Slot& slot);
  void Unregister(Slot& slot);
  // A snapshot of the threads inside cold scopes.
  struct InsideThread {
    platform::ThreadIdentity who;
    SourceLocation site;
  };
  std::vector<InsideThread> ThreadsInside() const;

  // --- fork(2) (fork.cc; pthread_atfork handlers). ---
  // Takes the slot list's lock across a fork, waiting at most
  // `patience_ms`; false if a blocked thread holds it.
  bool LockForFork(int patience_ms);
  // After the fork: releases the lock if `locked`; in the child, where its
  // holder does not exist, renews it otherwise.
  void UnlockAfterFork(bool locked, bool in_child);
  // In a fork child, where only the calling thread exists: forgets every
  // slot but `survivor`, so that the drain and the point of no return never
  // wait for threads that do not exist, and clears the survivor's attaching
  // mark (it is not attaching: it is running the fork handlers).
  void ForgetOtherThreadsAfterFork(Slot& survivor);

 private:
  Gate() = default;
  void Store(State state);
  bool AnyOtherAttaching(const Slot* self) const;

  // state, generation and the point of no return live in gate_words
  // (pyscope/detail/core.h), where the headers' fast paths read them.
  // The newest generation whose thread states CPython freed (an adopted
  // runtime's end frees nothing and leaves it).
  std::atomic<uint64_t> freed_generation_{0};
  std::atomic<PyInterpreterState*> main_{nullptr};
  std::atomic<const Slot*> finalizer_{nullptr};

  mutable CoreMutex mu_;
  std::vector<Slot*> slots_ ABSL_GUARDED_BY(mu_);
};

}  // namespace pyscope::detail

#endif  // PYSCOPE_SRC_GATE_H_
