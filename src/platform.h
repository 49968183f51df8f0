// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// The operating system behind small named functions: thread identity and
// names, the end of a thread, a per-thread slot whose destructor runs at
// thread exit, and the asymmetric fences of the attach gate. Everything
// specific to Linux and glibc is in platform_linux.cc; a port is that file.

#ifndef PYSCOPE_SRC_PLATFORM_H_
#define PYSCOPE_SRC_PLATFORM_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

// A thread-local word that the hot paths read with one load: initial-exec
// TLS (no __tls_get_addr call from a shared library).
#define PYSCOPE_INTERNAL_FAST_TLS \
  __thread __attribute__((tls_model("initial-exec")))

namespace pyscope::detail::platform {

// Who a thread is, captured on the thread itself.
struct ThreadIdentity {
  uint64_t os_thread_id = 0;  // gettid()
  uintptr_t handle = 0;       // pthread_t, for name look-ups while it lives
};

ThreadIdentity ThisThreadIdentity();

// The thread's name (pthread_setname_np), "" if none. `identity` must be a
// thread that has not exited (or the calling one).
std::string ThreadName(const ThreadIdentity& identity);

// "1234 (\"name\")": how diagnostics name a thread.
std::string DescribeThread(uint64_t os_thread_id, const std::string& name);
std::string DescribeThisThread();

// A monotonic clock (CLOCK_MONOTONIC), in nanoseconds.
int64_t MonotonicNanos();

// Ends the calling thread by unwinding its stack (glibc's pthread_exit is a
// forced unwind), so that the destructors of enclosing scopes run.
[[noreturn]] void EndThisThread();

// Calls `retire(value)` when a thread that stored a non-null `value` exits,
// after every C++ thread_local destructor of that thread has run (glibc:
// __call_tls_dtors, then the key destructors). A value stored again during
// that call is retired again. Never called for the main thread (exit()
// runs no key destructors).
class ThreadExitSlot {
 public:
  explicit ThreadExitSlot(void (*retire)(void*));
  void Set(void* value);

 private:
  unsigned key_;
};

// The names of the shared objects loaded in the process, each up to its
// first '.' ("_decimal" for _decimal.cpython-312-x86_64-linux-gnu.so).
// Extension modules stay loaded after Py_FinalizeEx, whichever interpreter
// imported them.
std::vector<std::string> LoadedSharedObjectStems();

// --- Asymmetric fences (membarrier(2), Linux 4.14+) ---
//
// The attach side of the gate runs on every cold attachment and every
// AllowThreads exit; the finalizer side once per finalization. Once
// registered, the attach side is a compiler fence and the finalizer forces
// a full memory barrier on every running thread of the process; without
// membarrier (old kernels, seccomp) both sides are sequentially consistent
// fences.

// Registers the process for expedited membarrier (idempotent). True when
// the frequent side of a handshake may then use a compiler fence only
// (detail::AttachFence), because HeavyFence makes every running thread
// execute a full barrier.
bool PrepareAsymmetricFences();

// The rare side: a full barrier on every thread of the process.
void HeavyFence();

}  // namespace pyscope::detail::platform

#endif  // PYSCOPE_SRC_PLATFORM_H_
