// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Linux and glibc behind platform.h.

#include <link.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "platform.h"

namespace pyscope::detail::platform {

ThreadIdentity ThisThreadIdentity() {
  return ThreadIdentity{static_cast<uint64_t>(syscall(SYS_gettid)),
                        static_cast<uintptr_t>(pthread_self())};
}

std::string ThreadName(const ThreadIdentity& identity) {
  char name[32] = "";
  if (identity.handle != 0) {
    pthread_getname_np(static_cast<pthread_t>(identity.handle), name,
                       sizeof(name));
  }
  return name;
}

std::string DescribeThread(uint64_t os_thread_id, const std::string& name) {
  return absl::StrFormat("%d (\"%s\")", os_thread_id, name);
}

std::vector<std::string> LoadedSharedObjectStems() {
  std::vector<std::string> stems;
  dl_iterate_phdr(
      [](struct dl_phdr_info* info, size_t, void* data) {
        const std::string path =
            info->dlpi_name != nullptr ? info->dlpi_name : "";
        const size_t slash = path.rfind('/');
        const std::string base =
            slash == std::string::npos ? path : path.substr(slash + 1);
        if (!base.empty()) {
          static_cast<std::vector<std::string>*>(data)->push_back(
              base.substr(0, base.find('.')));
        }
        return 0;
      },
      &stems);
  return stems;
}

std::string DescribeThisThread() {
  const ThreadIdentity self = ThisThreadIdentity();
  return DescribeThread(self.os_thread_id, ThreadName(self));
}

int64_t MonotonicNanos() {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec;
}

void EndThisThread() { pthread_exit(nullptr); }

static_assert(sizeof(pthread_key_t) <= sizeof(unsigned), "pthread_key_t fits");

ThreadExitSlot::ThreadExitSlot(void (*retire)(void*)) {
  pthread_key_t key;
  if (pthread_key_create(&key, retire) != 0) {
    std::fprintf(stderr, "pyscope: pthread_key_create failed\n");
    std::abort();
  }
  key_ = static_cast<unsigned>(key);
}

void ThreadExitSlot::Set(void* value) {
  pthread_setspecific(static_cast<pthread_key_t>(key_), value);
}

namespace {
std::atomic<bool> asymmetric_fences_ready{false};
}  // namespace

bool PrepareAsymmetricFences() {
  if (asymmetric_fences_ready.load(std::memory_order_acquire)) return true;
  const long supported = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
  if (supported < 0 || (supported & MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0 ||
      syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0,
              0) != 0) {
    return false;
  }
  asymmetric_fences_ready.store(true, std::memory_order_release);
  return true;
}

void HeavyFence() {
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (asymmetric_fences_ready.load(std::memory_order_acquire)) {
    syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
  }
  std::atomic_thread_fence(std::memory_order_seq_cst);
}

}  // namespace pyscope::detail::platform
