// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Stress: 64 native threads x N GILGuard acquisitions of the main
// interpreter, half of them with an AllowThreads scope and a nested
// GILGuard inside, while other threads create sub-interpreters, enter them
// from two threads each and end them from yet another thread. Counts are
// exact: a plain (non-atomic) C counter incremented under the GIL, a Python
// counter in __main__, per-interpreter counters read back before End().
// Without a GIL (the free-threaded build) attached threads run at once, so
// there the counters take a lock of their own and the exact counts show
// that every acquisition ran, not that they excluded each other.
// The whole run is a child process with a timeout (a deadlock fails it).
//
// Knobs: PYSCOPE_STRESS_THREADS (64), PYSCOPE_STRESS_ITERATIONS (N, 10000;
// CI sets fewer), PYSCOPE_STRESS_SUB_CYCLES (sub-interpreter lifecycles,
// 20).

#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "doctest/doctest.h"
#include "pyscope/pyscope.h"
#include "reliability/reliability.h"
#include "support/python_helpers.h"
#include "support/scenario.h"

namespace {

using pyscope::AllowThreads;
using pyscope::GILGuard;
using pyscope::ScopedRuntime;
using pyscope::SubInterpreter;
using pyscope_test::ChildResult;
using pyscope_test::FactOf;
using pyscope_test::Knob;
using pyscope_test::PrintFact;

// Incremented only under the main interpreter's GIL: a lost update would
// show that two threads held it at once.
long gil_protected_count = 0;

// Locked only where attaching does not exclude other threads.
std::mutex counter_mutex;
std::unique_lock<std::mutex> LockCountersWithoutGil() {
  std::unique_lock<std::mutex> lock(counter_mutex, std::defer_lock);
  if (!pyscope::detail::compat::kGilExcludesOtherThreads) lock.lock();
  return lock;
}

// __main__.n += 1 through the C API. Requires the GIL.
void IncrementPythonCounter() PYSCOPE_REQUIRES_GIL {
  PyObject* main_dict = PyModule_GetDict(PyImport_AddModule("__main__"));
  PyObject* n = PyDict_GetItemString(main_dict, "n");  // borrowed
  PyObject* next = PyLong_FromLong(PyLong_AsLong(n) + 1);
  PyDict_SetItemString(main_dict, "n", next);
  Py_DECREF(next);
}

long ReadPythonCounter() PYSCOPE_REQUIRES_GIL {
  PyObject* main_dict = PyModule_GetDict(PyImport_AddModule("__main__"));
  return PyLong_AsLong(PyDict_GetItemString(main_dict, "n"));
}

PYSCOPE_SCENARIO(Stress) {
  const int threads = static_cast<int>(Knob("PYSCOPE_STRESS_THREADS", 64));
  const long iterations = Knob("PYSCOPE_STRESS_ITERATIONS", 10000);
  const int sub_cycles =
      static_cast<int>(Knob("PYSCOPE_STRESS_SUB_CYCLES", 20));
  constexpr int kSubEntries = 200;  // per entering thread and cycle
  pyscope::RuntimeOptions options = pyscope::RuntimeOptions::Isolated();
  options.drain_deadline = absl::Seconds(30);
  ScopedRuntime runtime(options);
  {
    GILGuard gil;
    pyscope::Exec("n = 0");
  }
  std::atomic<long> refused{0};
  std::atomic<long> nested{0};
  const absl::Time start = absl::Now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (long i = 0; i < iterations; ++i) {
        GILGuard gil(std::nothrow);
        if (!gil.ok()) {
          refused.fetch_add(1);
          continue;
        }
        {
          auto lock = LockCountersWithoutGil();
          ++gil_protected_count;
          IncrementPythonCounter();
        }
        if (t % 2 == 1 && i % 4 == 0) {
          AllowThreads nogil;
          GILGuard again;
          auto lock = LockCountersWithoutGil();
          ++gil_protected_count;
          IncrementPythonCounter();
          nested.fetch_add(1);
        }
      }
    });
  }
  // Sub-interpreter lifecycles: created on this thread, entered by two
  // threads, ended on a third.
  std::atomic<long> sub_entries{0}, sub_mismatches{0}, sub_ended{0};
  std::thread lifecycles([&] {
    const auto creatable = pyscope_test::CreatableOptions();
    for (int cycle = 0; cycle < sub_cycles; ++cycle) {
      auto sub = std::make_unique<SubInterpreter>(
          creatable[cycle % creatable.size()].second);
      sub->Exec("import _thread\nm = 0\nlock = _thread.allocate_lock()");
      std::vector<std::thread> enter;
      for (int e = 0; e < 2; ++e) {
        enter.emplace_back([&] {
          for (int j = 0; j < kSubEntries; ++j) {
            GILGuard gil(*sub);
            pyscope::Exec(pyscope::detail::compat::kGilExcludesOtherThreads
                              ? "m += 1"
                              : "with lock:\n    m += 1");
            sub_entries.fetch_add(1);
          }
        });
      }
      for (std::thread& e : enter) e.join();
      const long m = sub->Call(
          []() PYSCOPE_REQUIRES_GIL { return pyscope_test::EvalLong("m"); });
      if (m != 2 * kSubEntries) sub_mismatches.fetch_add(1);
      std::thread ender([&] {
        if (sub->End().ok()) sub_ended.fetch_add(1);
      });
      ender.join();
    }
  });
  for (std::thread& w : workers) w.join();
  lifecycles.join();
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  long python_count = 0;
  {
    GILGuard gil;
    python_count = ReadPythonCounter();
  }
  const long expected = threads * iterations + nested.load();
  PrintFact("expected", expected);
  PrintFact("c_count", gil_protected_count);
  PrintFact("python_count", python_count);
  PrintFact("refused", refused.load());
  PrintFact("nested", nested.load());
  PrintFact("sub_entries", sub_entries.load());
  PrintFact("sub_expected", 2L * kSubEntries * sub_cycles);
  PrintFact("sub_mismatches", sub_mismatches.load());
  PrintFact("sub_ended", sub_ended.load());
  PrintFact("sub_cycles", static_cast<long>(sub_cycles));
  PrintFact("seconds", absl::StrFormat("%.2f", seconds));
  const absl::Status finalized = runtime.Finalize();
  PrintFact("finalize", finalized.ok() ? std::string("OK")
                                       : std::string(finalized.ToString()));
  return 0;
}

TEST_SUITE("reliability") {
  TEST_CASE("stress: exact counts, no deadlock") {
    const ChildResult child =
        pyscope_test::RunScenario("Stress", absl::Seconds(600));
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    const std::string expected = FactOf(child, "expected");
    CHECK(FactOf(child, "c_count") == expected);
    CHECK(FactOf(child, "python_count") == expected);
    CHECK(FactOf(child, "refused") == "0");
    CHECK(FactOf(child, "sub_entries") == FactOf(child, "sub_expected"));
    CHECK(FactOf(child, "sub_mismatches") == "0");
    CHECK(FactOf(child, "sub_ended") == FactOf(child, "sub_cycles"));
    CHECK(FactOf(child, "finalize") == "OK");
    pyscope_test::Figure(
        "stress",
        absl::StrFormat("threads=%d iterations=%d acquisitions=%s nested=%s "
                        "sub_cycles=%s sub_entries=%s seconds=%s exact=%d",
                        Knob("PYSCOPE_STRESS_THREADS", 64),
                        Knob("PYSCOPE_STRESS_ITERATIONS", 10000), expected,
                        FactOf(child, "nested"), FactOf(child, "sub_cycles"),
                        FactOf(child, "sub_entries"), FactOf(child, "seconds"),
                        FactOf(child, "c_count") == expected &&
                            FactOf(child, "python_count") == expected));
  }
}

}  // namespace
