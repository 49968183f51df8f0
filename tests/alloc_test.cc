// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// The hot paths allocate nothing: after a warm-up, nested GILGuards, cold
// GILGuards on a native thread whose thread state pyscope has cached,
// AllowThreads round trips and sub-interpreter entries (shared and own GIL)
// perform zero heap allocations.
//
// This binary replaces the global operator new/delete and the C allocator's
// malloc, calloc, realloc, aligned_alloc and posix_memalign with counting
// versions (glibc's __libc_* underneath), so an allocation anywhere in the
// process during a measured region counts: pyscope's, Abseil's and
// CPython's own (PyMem_Raw*, and obmalloc's arenas, come from malloc). The
// binary has its own main() with one runtime, because doctest and the
// shared test support allocate freely outside the measured regions.
//
// Built and registered from bench/meson.build (suite "alloc").

#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <thread>

#include "pyscope/pyscope.h"
#if PYSCOPE_BENCH_HAVE_SUB_INTERPRETER
#include "pyscope/sub_interpreter.h"
#endif

extern "C" {
void* __libc_malloc(std::size_t size);
void* __libc_calloc(std::size_t count, std::size_t size);
void* __libc_realloc(void* p, std::size_t size);
void* __libc_memalign(std::size_t alignment, std::size_t size);
}

namespace {

// Every allocation call of the process, operator new and malloc alike
// (operator new below goes through malloc once and counts once).
std::atomic<int64_t> allocations{0};

void* CountedAllocate(std::size_t size) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(size == 0 ? 1 : size);
}

void* CountedAllocateAligned(std::size_t size, std::align_val_t align) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_memalign(static_cast<std::size_t>(align), size == 0 ? 1 : size);
}

}  // namespace

extern "C" {
void* malloc(std::size_t size) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(size);
}
void* calloc(std::size_t count, std::size_t size) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_calloc(count, size);
}
void* realloc(void* p, std::size_t size) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_realloc(p, size);
}
void* aligned_alloc(std::size_t alignment, std::size_t size) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_memalign(alignment, size);
}
int posix_memalign(void** out, std::size_t alignment, std::size_t size) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  void* p = __libc_memalign(alignment, size);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}
}

void* operator new(std::size_t size) {
  if (void* p = CountedAllocate(size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) {
  if (void* p = CountedAllocate(size)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  return CountedAllocate(size);
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return CountedAllocate(size);
}
void* operator new(std::size_t size, std::align_val_t align) {
  if (void* p = CountedAllocateAligned(size, align)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size, std::align_val_t align) {
  if (void* p = CountedAllocateAligned(size, align)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t size, std::align_val_t align,
                   const std::nothrow_t&) noexcept {
  return CountedAllocateAligned(size, align);
}
void* operator new[](std::size_t size, std::align_val_t align,
                     const std::nothrow_t&) noexcept {
  return CountedAllocateAligned(size, align);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t,
                     const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t,
                       const std::nothrow_t&) noexcept {
  std::free(p);
}

namespace {

constexpr int kRounds = 10000;

int64_t Allocations() { return allocations.load(std::memory_order_relaxed); }

// Runs `body` once to warm up, then kRounds times, and returns the number of
// allocation calls made by the kRounds runs.
template <typename Body>
int64_t AllocationsOf(Body body) {
  body();
  const int64_t before = Allocations();
  for (int i = 0; i < kRounds; ++i) body();
  return Allocations() - before;
}

// The same, on a new native thread (no Python thread state of its own until
// the warm-up run makes pyscope create and cache one).
template <typename Body>
int64_t AllocationsOnNativeThread(Body body) {
  int64_t counted = -1;
  std::thread thread([&] { counted = AllocationsOf(body); });
  thread.join();
  return counted;
}

TEST_CASE("the counting allocator sees operator new") {
  const int64_t counted = AllocationsOf([] {
    int* volatile p = new int(1);
    delete p;
  });
  CHECK(counted == kRounds);
}

// The replacement must also see the calls made inside shared libraries
// (libpyscope, Abseil), or the zero counts below would prove nothing: a
// status with a message allocates there.
TEST_CASE("the counting allocator sees allocations in shared libraries") {
  pyscope::GILGuard gil;
  const int64_t before = Allocations();
  const absl::Status status = pyscope::TryExec("raise ValueError('boom')");
  CHECK_FALSE(status.ok());
  CHECK(Allocations() > before);
}

TEST_CASE("the counting allocator sees the C allocator") {
  const int64_t before = Allocations();
  void* volatile p = std::malloc(64);
  p = std::realloc(p, 128);
  std::free(p);
  void* volatile q = std::calloc(4, 16);
  std::free(q);
  CHECK(Allocations() - before == 3);
}

TEST_CASE("nested GILGuard allocates nothing") {
  pyscope::GILGuard outer;
  CHECK(AllocationsOf([] { pyscope::GILGuard inner; }) == 0);
}

TEST_CASE("GILGuard borrowing a host's PyGILState allocates nothing") {
  PyGILState_STATE host = PyGILState_Ensure();
  CHECK(AllocationsOf([] { pyscope::GILGuard guard; }) == 0);
  PyGILState_Release(host);
}

TEST_CASE("uncontended GILGuard on the initializing thread allocates nothing") {
  CHECK(AllocationsOf([] { pyscope::GILGuard gil; }) == 0);
  bool all_ok = true;
  CHECK(AllocationsOf([&all_ok] {
          pyscope::GILGuard gil(std::nothrow);
          all_ok = all_ok && gil.ok();
        }) == 0);
  CHECK(all_ok);
}

TEST_CASE(
    "cold GILGuard on a native thread with a cached state allocates "
    "nothing") {
  CHECK(AllocationsOnNativeThread([] { pyscope::GILGuard gil; }) == 0);
}

TEST_CASE("AllowThreads round trips allocate nothing") {
  pyscope::GILGuard gil;
  CHECK(AllocationsOf([] { pyscope::AllowThreads nogil; }) == 0);
  CHECK(AllocationsOf([] {
          pyscope::AllowThreads nogil;
          pyscope::GILGuard again;
        }) == 0);
}

TEST_CASE("AllowThreads on a native thread allocates nothing") {
  CHECK(AllocationsOnNativeThread([] {
          pyscope::GILGuard gil;
          pyscope::AllowThreads nogil;
        }) == 0);
}

#if PYSCOPE_BENCH_HAVE_SUB_INTERPRETER
TEST_CASE("entering a sub-interpreter with a cached state allocates nothing") {
  pyscope::SubInterpreter sub(pyscope::SubInterpreterOptions::Default());
  CHECK(AllocationsOnNativeThread([&sub] { pyscope::GILGuard gil(sub); }) == 0);
  // Switching from the main interpreter into `sub` and back.
  CHECK(AllocationsOnNativeThread([&sub] {
          pyscope::GILGuard main_gil;
          pyscope::GILGuard gil(sub);
        }) == 0);
  CHECK(sub.End().ok());
}

TEST_CASE("entering an own-GIL sub-interpreter allocates nothing") {
  if (!pyscope::detail::compat::kHasPerInterpreterGil) {
    MESSAGE("no own GIL before CPython 3.12");
    return;
  }
  pyscope::SubInterpreter sub(pyscope::SubInterpreterOptions::Isolated());
  CHECK(AllocationsOnNativeThread([&sub] { pyscope::GILGuard gil(sub); }) == 0);
  CHECK(AllocationsOnNativeThread([&sub] {
          pyscope::GILGuard gil(sub);
          pyscope::AllowThreads nogil;
        }) == 0);
  CHECK(sub.End().ok());
}
#endif

}  // namespace

int main(int argc, char** argv) {
  pyscope::ScopedRuntime python;
  doctest::Context context(argc, argv);
  const int failed = context.run();
  absl::Status finalized = python.Finalize();
  if (!finalized.ok()) return 1;
  return failed;
}
