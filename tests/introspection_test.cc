// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Interpreters and thread states as ranges; the live-guards snapshot (who
// holds a GIL, who released it, who waits for it, in which interpreter,
// since when, created where), and the per-thread state dictionary across a
// thread's guards, threads and interpreters.

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "doctest/doctest.h"
#include "pyscope/pyscope.h"
#include "support/python_helpers.h"
#include "support/sync.h"

namespace {

using pyscope::AllowThreads;
using pyscope::GILGuard;
using pyscope::LiveGuard;
using pyscope::ScopedRuntime;
using pyscope_test::EvalLong;
using pyscope_test::Event;
using pyscope_test::TestOptions;
using pyscope_test::ThreadId;

// Waits up to 10 s for `condition()`.
template <typename Condition>
bool WaitUntil(Condition condition) {
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (!condition()) {
    if (absl::Now() >= give_up) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

// The entry of the thread with `os_id`, waiting up to 10 s for `ready`.
template <typename Ready>
bool FindGuard(long os_id, LiveGuard* out, Ready ready) {
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (absl::Now() < give_up) {
    for (const LiveGuard& guard : pyscope::LiveGuards()) {
      if (static_cast<long>(guard.os_thread_id) == os_id && ready(guard)) {
        *out = guard;
        return true;
      }
    }
    absl::SleepFor(absl::Milliseconds(1));
  }
  return false;
}

TEST_SUITE("introspection") {
  TEST_CASE("interpreters and their thread states as ranges") {
    ScopedRuntime runtime(TestOptions());
    pyscope::SubInterpreter first;
    pyscope::SubInterpreter second;
    Event parked;
    Event release;
    std::thread worker([&] {
      GILGuard gil;
      AllowThreads nogil;
      parked.Set();
      release.Wait();
    });
    parked.Wait();
    GILGuard gil;
    std::vector<int64_t> ids;
    for (PyInterpreterState* interp : pyscope::Interpreters()) {
      ids.push_back(PyInterpreterState_GetID(interp));
    }
    CHECK(ids.size() == 3);
    CHECK(std::count(ids.begin(), ids.end(), 0) == 1);
    CHECK(std::count(ids.begin(), ids.end(), first.id()) == 1);
    CHECK(std::count(ids.begin(), ids.end(), second.id()) == 1);
    PyInterpreterState* main = PyInterpreterState_Main();
    int states = 0;
    bool found_mine = false;
    for (PyThreadState* tstate : pyscope::ThreadStates(main)) {
      ++states;
      found_mine = found_mine || tstate == PyThreadState_Get();
      CHECK(PyThreadState_GetInterpreter(tstate) == main);
    }
    CHECK(found_mine);
    CHECK(states == pyscope_test::CountThreadStates(main));
    CHECK(states >= 2);  // this thread and the parked worker
    CHECK(!pyscope::ThreadStates(main).empty());
    release.Set();
    {
      AllowThreads nogil;
      worker.join();
    }
  }

  TEST_CASE(
      "LiveGuards: holding, released, waiting, where, which interpreter") {
    ScopedRuntime runtime(TestOptions());
    pyscope::SubInterpreter sub;
    std::atomic<long> parked_id{0};
    std::atomic<long> in_sub_id{0};
    int parked_line = 0;
    Event release;
    std::thread parked([&] {
      pthread_setname_np(pthread_self(), "lg-parked");
      parked_line = __LINE__ + 1;
      GILGuard gil;
      AllowThreads nogil;
      parked_id = ThreadId();
      release.Wait();
    });
    std::thread in_sub([&] {
      pthread_setname_np(pthread_self(), "lg-in-sub");
      GILGuard gil(sub);
      in_sub_id = ThreadId();
      AllowThreads nogil;  // parked inside the sub-interpreter
      release.Wait();
    });
    REQUIRE(WaitUntil(
        [&] { return parked_id.load() != 0 && in_sub_id.load() != 0; }));
    LiveGuard guard;
    REQUIRE(FindGuard(parked_id, &guard,
                      [](const LiveGuard& g) { return g.depth == 2; }));
    CHECK(guard.thread_name == "lg-parked");
    CHECK(guard.gil_released);
    CHECK(!guard.holds_gil);
    CHECK(guard.interpreter_id == 0);
    CHECK(std::string(guard.outermost_kind) == "GILGuard");
    CHECK(std::string(guard.outermost_site.file()).find("introspection_test") !=
          std::string::npos);
    CHECK(guard.outermost_site.line() == parked_line);
    CHECK(guard.held_for >= absl::ZeroDuration());
    REQUIRE(FindGuard(in_sub_id, &guard,
                      [](const LiveGuard& g) { return g.depth == 2; }));
    CHECK(guard.interpreter_id == sub.id());

    // A thread waiting for the GIL this thread holds. Without a GIL
    // (free-threaded build) it attaches at once instead, so there is no
    // waiting to see.
    std::atomic<long> waiter_id{0};
    std::atomic<bool> waiter_attached{false};
    std::thread waiter;
    {
      GILGuard gil;
      waiter = std::thread([&] {
        pthread_setname_np(pthread_self(), "lg-waiter");
        waiter_id = ThreadId();
        GILGuard blocked;
        waiter_attached = true;
      });
      REQUIRE(WaitUntil([&] { return waiter_id.load() != 0; }));
      if (pyscope::detail::compat::kGilExcludesOtherThreads) {
        REQUIRE(FindGuard(waiter_id, &guard,
                          [](const LiveGuard& g) { return g.attaching; }));
        CHECK(guard.depth == 1);
      } else {
        CHECK(WaitUntil([&] { return waiter_attached.load(); }));
      }
      // This thread, holding the GIL, is listed too.
      REQUIRE(FindGuard(ThreadId(), &guard,
                        [](const LiveGuard& g) { return g.holds_gil; }));
      CHECK(guard.interpreter_id == 0);
      const std::string text = pyscope::DescribeLiveGuards();
      CHECK(text.find("lg-parked") != std::string::npos);
      if (pyscope::detail::compat::kGilExcludesOtherThreads) {
        CHECK(text.find("lg-waiter") != std::string::npos);
        CHECK(text.find("attaching (waiting for the GIL)") !=
              std::string::npos);
      }
      CHECK(text.find("holds the GIL") != std::string::npos);
      CHECK(text.find("introspection_test.cc:" + std::to_string(parked_line)) !=
            std::string::npos);
      CHECK(text.find("sub-interpreter " + std::to_string(sub.id()) +
                      ": 1 thread(s) inside") != std::string::npos);
      CHECK(text.find("runtime running") != std::string::npos);
    }
    waiter.join();
    release.Set();
    parked.join();
    in_sub.join();
    CHECK(pyscope::LiveGuards().empty());
  }

  TEST_CASE("the thread state dictionary lives across a thread's guards") {
    ScopedRuntime runtime(TestOptions());
    pyscope::SubInterpreter sub;
    PyObject* first = nullptr;
    PyObject* second = nullptr;
    PyObject* in_sub = nullptr;
    long kept = 0;
    std::thread worker([&] {
      {
        GILGuard gil;
        first = pyscope::ThreadStateDict();
        PyObject* value = PyLong_FromLong(1234);
        PyDict_SetItemString(first, "host.request", value);
        Py_DECREF(value);
      }
      {
        GILGuard gil;  // a new scope: the same cached thread state
        second = pyscope::ThreadStateDict();
        kept = PyLong_AsLong(PyDict_GetItemString(second, "host.request"));
      }
      {
        GILGuard gil(sub);
        in_sub = pyscope::ThreadStateDict();
        CHECK(PyDict_GetItemString(in_sub, "host.request") == nullptr);
      }
    });
    worker.join();
    CHECK(first == second);
    CHECK(kept == 1234);
    CHECK(in_sub != first);
    GILGuard gil;
    PyObject* mine = pyscope::ThreadStateDict();
    // (The worker's dictionary was freed with its thread state when it
    // exited, so only the contents tell them apart.)
    CHECK(PyDict_GetItemString(mine, "host.request") == nullptr);
    {
      AllowThreads nogil;
      absl::StatusOr<PyObject*> refused = pyscope::TryThreadStateDict();
      CHECK(refused.status().code() == absl::StatusCode::kFailedPrecondition);
    }
  }
}

}  // namespace
