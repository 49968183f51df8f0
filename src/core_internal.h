// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Process-wide state of the compiled core, shared by src/*.cc only.

#ifndef PYSCOPE_SRC_CORE_INTERNAL_H_
#define PYSCOPE_SRC_CORE_INTERNAL_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "pyscope/detail/core.h"
#include "pyscope/runtime.h"

namespace pyscope::detail {

// A thread state pyscope created for one (thread, interpreter, generation).
struct OwnedThreadState {
  PyInterpreterState* interp;
  uint64_t generation;
  PyThreadState* tstate;
};

// The core-side half of a ThreadRecord.
struct RecordImpl {
  absl::Mutex mu;
  std::vector<OwnedThreadState> owned ABSL_GUARDED_BY(mu);
  unsigned long handle = 0;  // pthread_t
  // The generation under which the outermost scope attached; a re-attach
  // under another generation (or after the point of no return) would touch
  // freed interpreter state.
  uint64_t scope_generation = 0;
};

struct Core {
  absl::Mutex mu;
  std::vector<ThreadRecord*> records ABSL_GUARDED_BY(mu);
  std::vector<std::function<void()>> exit_callbacks ABSL_GUARDED_BY(mu);
  const void* live_runtime ABSL_GUARDED_BY(mu) = nullptr;

  std::atomic<int> state{static_cast<int>(RuntimeState::kUninitialized)};
  // Set once finalization passes its point of no return (Py_FinalizeEx is
  // about to run); cleared by the next initialization.
  std::atomic<bool> hard{false};
  std::atomic<uint64_t> generation{0};

  // Written by the initializing thread before `state` becomes kRunning.
  PyInterpreterState* main_interp = nullptr;
  ThreadRecord* init_record = nullptr;
  PyThreadState* init_tstate = nullptr;
};

Core& GetCore();
RecordImpl& ImplOf(ThreadRecord& record);

// Status for a refused attachment in runtime state `state`.
absl::Status RefusalFor(int state);

// Waits until no other thread is attaching or inside a cold-attached scope,
// up to `deadline`. Returns kDeadlineExceeded naming the threads still inside.
absl::Status DrainAttachedThreads(absl::Duration deadline);

// Waits until no thread is in the middle of attaching.
void WaitForAttachingThreads();

// Deletes every cached thread state of the current generation that belongs to
// a thread not inside a scope. Requires the GIL of the main interpreter.
void DeleteCachedThreadStates();

// "1234 (\"worker\")" for a record, or for the calling thread.
std::string DescribeThread(const ThreadRecord& record);

}  // namespace pyscope::detail

#endif  // PYSCOPE_SRC_CORE_INTERNAL_H_
