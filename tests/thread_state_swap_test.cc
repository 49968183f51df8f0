// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// ThreadStateSwap: running with a thread state the caller manages, and
// getting the previous one back on every path.

#include <stdexcept>
#include <string>

#include "doctest/doctest.h"
#include "pyscope/pyscope.h"
#include "support/python_helpers.h"

namespace {

using pyscope::AllowThreads;
using pyscope::GILGuard;
using pyscope::ScopedRuntime;
using pyscope::ThreadStateSwap;
using pyscope_test::EvalBool;
using pyscope_test::EvalLong;
using pyscope_test::IsCurrent;
using pyscope_test::TestOptions;

// A thread state of the main interpreter made by hand, freed at scope exit.
class HandMadeThreadState {
 public:
  HandMadeThreadState()
      : tstate_(PyThreadState_New(PyInterpreterState_Main())) {}
  ~HandMadeThreadState() {
    PyThreadState_Clear(tstate_);
    PyThreadState_Delete(tstate_);
  }
  PyThreadState* get() const { return tstate_; }

 private:
  PyThreadState* tstate_;
};

TEST_SUITE("thread_state_swap") {
  TEST_CASE("the swapped-in state is current for the scope, then restored") {
    ScopedRuntime runtime(TestOptions());
    GILGuard gil;
    PyThreadState* original = PyThreadState_Get();
    pyscope::Exec(
        "import threading\nlocal = threading.local()\n"
        "local.owner = 'original'\n"
        "ident = threading.get_ident()");
    HandMadeThreadState mine;
    {
      ThreadStateSwap swap(mine.get());
      CHECK(swap.previous() == original);
      CHECK(PyThreadState_Get() == mine.get());
      // Same OS thread, but thread-local Python data belongs to the
      // thread state: the original's is not visible here.
      CHECK(EvalBool("threading.get_ident() == ident"));
      CHECK(EvalBool("not hasattr(local, 'owner')"));
      pyscope::Exec("local.owner = 'swapped'");
      {
        GILGuard nested;  // stays on the swapped-in state
        CHECK(PyThreadState_Get() == mine.get());
      }
      {
        AllowThreads nogil;  // releases and re-takes the swapped-in state
        CHECK(!IsCurrent(mine.get()));
      }
      CHECK(PyThreadState_Get() == mine.get());
      CHECK(pyscope_test::EvalString("local.owner") == "swapped");
    }
    CHECK(PyThreadState_Get() == original);
    CHECK(pyscope_test::EvalString("local.owner") == "original");
  }

  TEST_CASE("swaps nest") {
    ScopedRuntime runtime(TestOptions());
    GILGuard gil;
    PyThreadState* original = PyThreadState_Get();
    HandMadeThreadState first;
    HandMadeThreadState second;
    {
      ThreadStateSwap outer(first.get());
      {
        ThreadStateSwap inner(second.get());
        CHECK(inner.previous() == first.get());
        CHECK(PyThreadState_Get() == second.get());
      }
      CHECK(PyThreadState_Get() == first.get());
    }
    CHECK(PyThreadState_Get() == original);
  }

  TEST_CASE("an exception through the swap restores the previous state") {
    ScopedRuntime runtime(TestOptions());
    GILGuard gil;
    PyThreadState* original = PyThreadState_Get();
    HandMadeThreadState mine;
    try {
      ThreadStateSwap swap(mine.get());
      pyscope::Exec("raise ValueError('inside the swap')");
    } catch (const pyscope::PythonError& error) {
      CHECK(error.type_name() == "ValueError");
    }
    CHECK(PyThreadState_Get() == original);
    CHECK(PyErr_Occurred() == nullptr);
    CHECK(EvalLong("40 + 2") == 42);
  }

  TEST_CASE("a null thread state is reported and nothing is swapped") {
    ScopedRuntime runtime(TestOptions());
    GILGuard gil;
    PyThreadState* original = PyThreadState_Get();
    pyscope_test::RecordingMisuseHandler handler;
    const int line = __LINE__ + 2;
    {
      ThreadStateSwap swap(nullptr);
      CHECK(swap.previous() == nullptr);
      CHECK(PyThreadState_Get() == original);
    }
    CHECK(PyThreadState_Get() == original);
    const auto reports = handler.reports();
    REQUIRE(reports.size() == 1);
    CHECK(reports[0].misuse == pyscope::Misuse::kSwapWithoutGil);
    CHECK(std::string(reports[0].guard) == "ThreadStateSwap");
    CHECK(reports[0].created_at.line() == line);
  }
}

}  // namespace
