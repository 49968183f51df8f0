// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// AllowThreads: releasing the GIL for a scope, re-taking it inside with a
// nested GILGuard, and every scope restored when an exception propagates.
// On the free-threaded build "releasing the GIL" is detaching the thread
// state: other threads run Python either way, but a stop-the-world pause
// (the garbage collector) waits for every attached thread.

#include <atomic>
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "doctest/doctest.h"
#include "pyscope/pyscope.h"
#include "support/python_helpers.h"
#include "support/scenario.h"
#include "support/sync.h"

namespace {

using pyscope::AllowThreads;
using pyscope::GILGuard;
using pyscope::ScopedRuntime;
using pyscope_test::ChildResult;
using pyscope_test::EvalLong;
using pyscope_test::IsCurrent;
using pyscope_test::RunScenario;
using pyscope_test::TestOptions;

int Level() { return pyscope::detail::ThisThread().level; }

// Whether holding the GIL keeps other threads from running Python (false on
// the free-threaded build).
constexpr bool kGilExcludes = pyscope::detail::compat::kGilExcludesOtherThreads;

PYSCOPE_SCENARIO(NativeThreadsRunWhileReleased) {
  ScopedRuntime runtime(TestOptions());
  GILGuard gil;
  // (The lock keeps the count exact where threads run Python at once, as
  // on the free-threaded build.)
  pyscope::Exec("import threading\ncounter = 0\nlock = threading.Lock()");
  {
    AllowThreads nogil;
    // These threads can only finish if this thread really released the
    // GIL; the join would hang otherwise (the test's timeout catches it).
    std::vector<std::thread> workers;
    for (int i = 0; i < 4; ++i) {
      workers.emplace_back([] {
        for (int j = 0; j < 100; ++j) {
          GILGuard worker_gil;
          pyscope::Exec("with lock:\n    counter += 1");
        }
      });
    }
    for (std::thread& worker : workers) worker.join();
  }
  std::printf("counter=%ld\n", EvalLong("counter"));
  return 0;
}

TEST_SUITE("allow_threads") {
  TEST_CASE("native threads run Python while the GIL is released") {
    ChildResult child =
        RunScenario("NativeThreadsRunWhileReleased", absl::Seconds(20));
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(child.out == "counter=400\n");
  }

  TEST_CASE("a Python thread makes progress only while released (GIL)") {
    ScopedRuntime runtime(TestOptions());
    GILGuard gil;
    pyscope::Exec(R"py(
import threading, time
spins = 0
stop = False
started = threading.Event()
def spin():
    global spins
    started.set()
    while not stop:
        spins += 1
spinner = threading.Thread(target=spin)
spinner.start()
started.wait()
)py");
    // Read without running bytecode, which could hand the GIL over.
    PyObject* globals = PyModule_GetDict(PyImport_AddModule("__main__"));
    // (A new reference: free-threaded, the spinner may replace the value
    // and free the old one meanwhile.)
    auto spins = [globals]() PYSCOPE_REQUIRES_GIL {
      PyObject* value = PyMapping_GetItemString(globals, "spins");
      const long result = PyLong_AsLong(value);
      Py_DECREF(value);
      return result;
    };
    // Held: the spinner cannot run.
    const long held_before = spins();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const long held_after = spins();
    // Released: the spinner runs (allow a loaded machine up to 10s).
    long released_after = held_after;
    for (int i = 0; i < 1000 && released_after == held_after; ++i) {
      AllowThreads nogil;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      GILGuard again;
      released_after = spins();
    }
    pyscope::Exec("stop = True\nspinner.join()");
    if (kGilExcludes) {
      CHECK(held_after == held_before);
    } else {
      // Free-threaded build: the spinner ran while this thread was attached
      // (the GIL, which an extension module could turn on, stayed off).
      CHECK(!pyscope_test::EvalBool("__import__('sys')._is_gil_enabled()"));
      CHECK(held_after > held_before);
    }
    CHECK(released_after > held_after);
  }

  TEST_CASE("a stop-the-world pause waits for attached threads, not released") {
    // A holds a guard and blocks in C++ code; B then collects garbage.
    // With a GIL, B cannot attach while A holds it; free-threaded, B
    // attaches at once but gc.collect() stops the world, which waits for
    // every attached thread. Either way B finishes only once A detaches,
    // and AllowThreads is what detaches it.
    ScopedRuntime runtime(TestOptions());
    std::atomic<bool> a_attached{false};
    std::atomic<bool> a_may_release{false};
    std::atomic<bool> b_started{false};
    std::atomic<bool> b_done{false};
    bool b_done_while_a_attached = true;
    bool b_done_while_a_released = false;
    std::thread a([&] {
      GILGuard gil;
      a_attached = true;
      pyscope_test::WaitFor(a_may_release, absl::Seconds(60));
      b_done_while_a_attached = b_done.load();
      AllowThreads nogil;
      b_done_while_a_released = pyscope_test::WaitFor(b_done);
    });
    pyscope_test::WaitFor(a_attached);
    std::thread b([&] {
      b_started = true;
      GILGuard gil;
      pyscope::Exec("import gc\ngc.collect()");
      b_done = true;
    });
    pyscope_test::WaitFor(b_started);
    // B had the time to finish if nothing held it up (this only makes the
    // check meaningful; no duration is asserted).
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    a_may_release = true;
    a.join();
    b.join();
    CHECK(!b_done_while_a_attached);
    CHECK(b_done_while_a_released);
  }

  TEST_CASE("a GILGuard inside AllowThreads re-takes the same thread state") {
    ScopedRuntime runtime(TestOptions());
    GILGuard gil;
    PyThreadState* mine = PyThreadState_Get();
    CHECK(Level() == 1);
    {
      AllowThreads nogil;
      CHECK(Level() == 2);
      CHECK(PyGILState_Check() == 0);
      CHECK(!IsCurrent(mine));
      {
        GILGuard again;
        CHECK(Level() == 3);
        CHECK(PyGILState_Check() == 1);
        CHECK(PyThreadState_Get() == mine);
        pyscope::Exec("inside = 'retaken'");
        {
          // And it nests like any other guard.
          AllowThreads nogil_again;
          CHECK(PyGILState_Check() == 0);
        }
        CHECK(IsCurrent(mine));
      }
      CHECK(PyGILState_Check() == 0);
      CHECK(!IsCurrent(mine));
    }
    CHECK(Level() == 1);
    CHECK(IsCurrent(mine));
    CHECK(pyscope_test::EvalString("inside") == "retaken");
  }

  TEST_CASE("an exception through every scope restores every scope") {
    ScopedRuntime runtime(TestOptions());
    PyThreadState* mine = nullptr;
    SUBCASE("caught outside all guards") {
      try {
        GILGuard gil;
        mine = PyThreadState_Get();
        AllowThreads nogil;
        GILGuard again;
        AllowThreads nogil_again;
        throw std::runtime_error("unwinding");
      } catch (const std::runtime_error&) {
      }
      CHECK(Level() == 0);
      CHECK(!pyscope::detail::ThisThread().holding);
      CHECK(!IsCurrent(mine));
      // Released: another thread attaches at once.
      bool other_ok = false;
      std::thread other([&other_ok] {
        GILGuard gil(std::nothrow);
        other_ok = gil.ok() && EvalLong("1 + 1") == 2;
      });
      other.join();
      CHECK(other_ok);
    }
    SUBCASE("caught inside the outer guard") {
      GILGuard gil;
      mine = PyThreadState_Get();
      try {
        AllowThreads nogil;
        GILGuard again;
        pyscope::Exec("raise KeyError('inner')");
      } catch (const pyscope::PythonError& error) {
        CHECK(error.type_name() == "KeyError");
      }
      CHECK(Level() == 1);
      CHECK(IsCurrent(mine));
      CHECK(PyErr_Occurred() == nullptr);
      CHECK(EvalLong("2 + 3") == 5);
    }
    SUBCASE("caught between AllowThreads and the guard") {
      GILGuard gil;
      mine = PyThreadState_Get();
      {
        AllowThreads nogil;
        try {
          GILGuard again;
          throw std::logic_error("inner");
        } catch (const std::logic_error&) {
        }
        CHECK(Level() == 2);
        CHECK(!IsCurrent(mine));
      }
      CHECK(IsCurrent(mine));
    }
  }

  TEST_CASE("AllowThreads works on a native worker thread") {
    ScopedRuntime runtime(TestOptions());
    bool released = false;
    bool back = false;
    std::thread worker([&] {
      GILGuard gil;
      PyThreadState* mine = PyThreadState_Get();
      {
        AllowThreads nogil;
        released = !IsCurrent(mine) && PyGILState_Check() == 0;
      }
      back = IsCurrent(mine) && EvalLong("3 * 3") == 9;
    });
    worker.join();
    CHECK(released);
    CHECK(back);
  }
}

}  // namespace
