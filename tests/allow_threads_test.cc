// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// AllowThreads: releasing the GIL for a scope, re-taking it inside with a
// nested GILGuard, and every scope restored when an exception propagates.

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

PYSCOPE_SCENARIO(NativeThreadsRunWhileReleased) {
  ScopedRuntime runtime(TestOptions());
  GILGuard gil;
  pyscope::Exec("counter = 0");
  {
    AllowThreads nogil;
    // These threads can only finish if this thread really released the
    // GIL; the join would hang otherwise (the test's timeout catches it).
    std::vector<std::thread> workers;
    for (int i = 0; i < 4; ++i) {
      workers.emplace_back([] {
        for (int j = 0; j < 100; ++j) {
          GILGuard worker_gil;
          pyscope::Exec("counter += 1");
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

  TEST_CASE("a Python thread makes progress only while released") {
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
    auto spins = [globals]() PYSCOPE_REQUIRES_GIL {
      return PyLong_AsLong(PyDict_GetItemString(globals, "spins"));
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
    CHECK(held_after == held_before);
    CHECK(released_after > held_after);
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
