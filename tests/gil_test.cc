// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// GILGuard: reentrancy, refusals, the per-thread thread-state cache, hosts
// mixing in PyGILState, and guards opened from code that Python called.

#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <new>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
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
using pyscope_test::CountThreadStates;
using pyscope_test::EvalBool;
using pyscope_test::EvalLong;
using pyscope_test::IsCurrent;
using pyscope_test::RunScenario;
using pyscope_test::TestOptions;

int Level() { return pyscope::detail::ThisThread().level; }

using pyscope_test::Event;

TEST_SUITE("gil") {
  TEST_CASE("GILGuard is reentrant and counts its own depth") {
    ScopedRuntime runtime(TestOptions());
    CHECK(Level() == 0);
    PyThreadState* outer_tstate = nullptr;
    {
      GILGuard outer;
      outer_tstate = PyThreadState_Get();
      CHECK(Level() == 1);
      CHECK(PyGILState_Check() == 1);
      {
        GILGuard inner;
        CHECK(Level() == 2);
        CHECK(PyThreadState_Get() == outer_tstate);
        {
          GILGuard innermost;
          CHECK(Level() == 3);
          pyscope::Exec("depth_probe = 3");
        }
        CHECK(Level() == 2);
      }
      // Leaving the nested guards released nothing.
      CHECK(Level() == 1);
      CHECK(PyGILState_Check() == 1);
      CHECK(EvalLong("depth_probe") == 3);
    }
    CHECK(Level() == 0);
    CHECK(!IsCurrent(outer_tstate));
    CHECK(PyGILState_Check() == 0);
  }

  TEST_CASE("the depth is pyscope's own, not PyGILState_Check") {
    ScopedRuntime runtime(TestOptions());
    int check_inside_host = -1;
    int check_after_guard = -1;
    int level_inside = -1;
    long value = -1;
    std::thread host_thread([&] {
      // The host holds the GIL through PyGILState; a guard opened inside
      // borrows that and must not release it when it ends.
      PyGILState_STATE state = PyGILState_Ensure();
      check_inside_host = PyGILState_Check();
      {
        GILGuard gil;
        level_inside = Level();
        pyscope::Exec("host_value = 7");
      }
      check_after_guard = PyGILState_Check();
      PyObject* result = PyRun_String(
          "host_value * 6", Py_eval_input,
          PyModule_GetDict(PyImport_AddModule("__main__")), nullptr);
      value = result != nullptr ? PyLong_AsLong(result) : -1;
      Py_XDECREF(result);
      PyGILState_Release(state);
    });
    host_thread.join();
    CHECK(check_inside_host == 1);
    CHECK(level_inside == 1);
    CHECK(check_after_guard == 1);
    CHECK(value == 42);
  }

  TEST_CASE("GILGuard after finalization is kUnavailable, both forms") {
    ScopedRuntime runtime(TestOptions());
    REQUIRE(runtime.Finalize().ok());
    try {
      GILGuard gil;
      FAIL("GILGuard did not throw");
    } catch (const pyscope::Error& error) {
      CHECK(error.status().code() == absl::StatusCode::kUnavailable);
      CHECK(std::string(error.status().message()).find("finalized") !=
            std::string::npos);
    }
    CHECK(Level() == 0);
    GILGuard gil(std::nothrow);
    CHECK(!gil.ok());
    CHECK(gil.status().code() == absl::StatusCode::kUnavailable);
    CHECK(Level() == 0);
  }

  TEST_CASE("a native thread keeps one thread state for its lifetime") {
    ScopedRuntime runtime(TestOptions());
    PyInterpreterState* interp = runtime.main_interpreter();
    int base = 0;
    {
      GILGuard gil;
      pyscope::Exec("import threading\nlocal = threading.local()");
      base = CountThreadStates(interp);
    }
    std::set<PyThreadState*> tstates;
    std::set<long> idents;
    std::set<int> counts;
    bool local_kept = true;
    unsigned long self = 0;
    Event done_attaching;
    Event may_exit;
    std::thread worker([&] {
      self = static_cast<unsigned long>(pthread_self());
      for (int i = 0; i < 200; ++i) {
        GILGuard gil;
        tstates.insert(PyThreadState_Get());
        idents.insert(EvalLong("threading.get_ident()"));
        counts.insert(CountThreadStates(interp));
        if (i == 0) {
          pyscope::Exec("local.mark = 'kept'");
        } else if (!EvalBool("getattr(local, 'mark', None) == 'kept'")) {
          local_kept = false;
        }
      }
      done_attaching.Set();
      may_exit.Wait();
    });
    done_attaching.Wait();
    int while_alive = 0;
    {
      GILGuard gil;
      while_alive = CountThreadStates(interp);
    }
    may_exit.Set();
    worker.join();
    int after_exit = 0;
    {
      GILGuard gil;
      after_exit = CountThreadStates(interp);
    }
    CHECK(tstates.size() == 1);
    CHECK(idents.size() == 1);
    CHECK(static_cast<unsigned long>(*idents.begin()) == self);
    CHECK(local_kept);
    CHECK(counts == std::set<int>{base + 1});
    // Cached between acquisitions, freed when the thread exits.
    CHECK(while_alive == base + 1);
    CHECK(after_exit == base);
  }

  TEST_CASE("a host's PyGILState pair does not delete the cached state") {
    ScopedRuntime runtime(TestOptions());
    PyInterpreterState* interp = runtime.main_interpreter();
    int base = 0;
    {
      GILGuard gil;
      pyscope::Exec("import threading\nlocal = threading.local()");
      base = CountThreadStates(interp);
    }
    PyThreadState* first = nullptr;
    bool inside_same = false;
    bool inside_still_current = false;
    bool outside_same = false;
    bool later_same = false;
    bool local_kept = false;
    int count_after = -1;
    std::thread worker([&] {
      {
        GILGuard gil;
        first = PyThreadState_Get();
        pyscope::Exec("local.mark = 'kept'");
        // Inside a pyscope scope.
        PyGILState_STATE state = PyGILState_Ensure();
        inside_same = PyThreadState_Get() == first;
        PyGILState_Release(state);
        inside_still_current = IsCurrent(first);
      }
      {
        // Outside any pyscope scope, on a thread with a cached state.
        PyGILState_STATE state = PyGILState_Ensure();
        outside_same = PyThreadState_Get() == first;
        PyGILState_Release(state);
      }
      GILGuard gil;
      later_same = PyThreadState_Get() == first;
      local_kept = EvalBool("getattr(local, 'mark', None) == 'kept'");
      count_after = CountThreadStates(interp);
    });
    worker.join();
    CHECK(inside_same);
    CHECK(inside_still_current);
    CHECK(outside_same);
    CHECK(later_same);
    CHECK(local_kept);
    CHECK(count_after == base + 1);
  }
}

// Exposed to Python as `probe()`: opens guards from code Python called.
// Returns (pthread id, level inside, same thread state before and after an
// AllowThreads, thread states counted inside).
PyObject* Probe(PyObject*, PyObject*) {
  GILGuard gil;
  const int level = Level();
  PyThreadState* before = PyThreadState_Get();
  {
    AllowThreads nogil;
    std::this_thread::yield();
  }
  const bool same = PyThreadState_Get() == before;
  bool listed = false;
  for (const pyscope::AttachedThread& attached : pyscope::AttachedThreads()) {
    if (static_cast<long>(attached.os_thread_id) == pyscope_test::ThreadId()) {
      listed = true;
    }
  }
  return Py_BuildValue("(kiOOi)", static_cast<unsigned long>(pthread_self()),
                       level, same ? Py_True : Py_False,
                       listed ? Py_True : Py_False,
                       CountThreadStates(PyThreadState_GetInterpreter(before)));
}

PyMethodDef probe_def = {"probe", &Probe, METH_NOARGS, nullptr};

TEST_SUITE("gil") {
  TEST_CASE("GILGuard in code called from Python borrows the attachment") {
    ScopedRuntime runtime(TestOptions());
    GILGuard gil;
    PyObject* probe = PyCFunction_New(&probe_def, nullptr);
    REQUIRE(probe != nullptr);
    REQUIRE(PyObject_SetAttrString(PyImport_AddModule("__main__"), "probe",
                                   probe) == 0);
    Py_DECREF(probe);
    const int base = CountThreadStates(runtime.main_interpreter());
    pyscope::Exec(R"py(
import threading
results = []
def run():
    ident = threading.get_ident()
    result = probe()
    # Still running Python with the GIL after the guard ended.
    results.append((ident,) + result)
threads = [threading.Thread(target=run) for _ in range(3)]
for t in threads:
    t.start()
for t in threads:
    t.join()
)py");
    CHECK(EvalLong("len(results)") == 3);
    // The guard ran on the Python thread, with its thread state.
    CHECK(EvalBool("all(r[0] == r[1] for r in results)"));
    // A borrowed guard opens one level on that thread and no more.
    CHECK(EvalBool("all(r[2] == 1 for r in results)"));
    CHECK(EvalBool("all(r[3] for r in results)"));
    // Borrowed attachments are not native attachments to drain.
    CHECK(EvalBool("not any(r[4] for r in results)"));
    // No thread state beyond the Python threads' own.
    CHECK(
        EvalBool(absl::StrCat("all(r[5] <= ", base + 3, " for r in results)")));
    // From the main thread's own Python code: nested, same thread state.
    CHECK(EvalLong("probe()[1]") == 2);
  }

  TEST_CASE("AttachedThreads names native threads inside a guard") {
    ScopedRuntime runtime(TestOptions());
    Event inside;
    Event may_leave;
    long worker_id = 0;
    int line = 0;
    std::thread worker([&] {
      pthread_setname_np(pthread_self(), "pyscope-attach");
      worker_id = pyscope_test::ThreadId();
      line = __LINE__ + 1;
      GILGuard gil;
      {
        AllowThreads nogil;
        inside.Set();
        may_leave.Wait();
      }
    });
    inside.Wait();
    const std::vector<pyscope::AttachedThread> during =
        pyscope::AttachedThreads();
    may_leave.Set();
    worker.join();
    REQUIRE(during.size() == 1);
    CHECK(static_cast<long>(during[0].os_thread_id) == worker_id);
    CHECK(during[0].name == "pyscope-attach");
    CHECK(during[0].attached_at.line() == line);
    CHECK(std::string(during[0].attached_at.file()).find("gil_test.cc") !=
          std::string::npos);
    CHECK(pyscope::AttachedThreads().empty());
  }
}

PYSCOPE_SCENARIO(GuardBeforeAnyRuntime) {
  try {
    GILGuard gil;
    std::printf("throwing=no exception\n");
  } catch (const pyscope::Error& error) {
    std::printf("throwing=%s\n",
                absl::StatusCodeToString(error.status().code()).c_str());
    std::printf("message=%s\n", std::string(error.status().message()).c_str());
  }
  GILGuard gil(std::nothrow);
  std::printf("nothrow_ok=%d\n", gil.ok());
  std::printf("nothrow=%s\n",
              absl::StatusCodeToString(gil.status().code()).c_str());
  std::printf("level=%d\n", Level());
  return 0;
}

PYSCOPE_SCENARIO(GuardDuringFinalization) {
  ScopedRuntime runtime(TestOptions());
  runtime.AddExitCallback([] {
    // The finalizing thread holds the GIL and waits for nobody: the other
    // thread must be refused at once, not block.
    std::thread other([] {
      try {
        GILGuard gil;
        std::printf("throwing=no exception\n");
      } catch (const pyscope::Error& error) {
        std::printf("throwing=%s\n",
                    absl::StatusCodeToString(error.status().code()).c_str());
        std::printf("message=%s\n",
                    std::string(error.status().message()).c_str());
      }
      GILGuard gil(std::nothrow);
      std::printf("nothrow=%s\n",
                  absl::StatusCodeToString(gil.status().code()).c_str());
    });
    other.join();
  });
  std::printf("finalize=%s\n", runtime.Finalize().ToString().c_str());
  return 0;
}

PYSCOPE_SCENARIO(ThreadOutlivesRuntimes) {
  // A native thread attaches under one runtime, lives on through its
  // finalization and a new runtime, attaches again and exits: its old
  // thread state (freed by Py_FinalizeEx) is never touched.
  std::mutex mu;
  std::condition_variable cv;
  int step = 0;
  auto wait_for = [&](int value) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return step == value; });
  };
  auto advance = [&](int value) {
    std::lock_guard<std::mutex> lock(mu);
    step = value;
    cv.notify_all();
  };
  auto first_runtime = ScopedRuntime::Create(TestOptions());
  if (!first_runtime.ok()) return 1;
  std::thread worker([&] {
    {
      GILGuard gil;
      pyscope::Exec("marker = 'first'");
    }
    advance(1);
    wait_for(2);
    {
      GILGuard gil;
      std::printf("second_marker=%s\n",
                  pyscope_test::EvalString("marker").c_str());
      std::printf("fresh_tstate=%d\n",
                  PyThreadState_GetInterpreter(PyThreadState_Get()) ==
                      PyInterpreterState_Main());
    }
    advance(3);
    wait_for(4);
  });
  wait_for(1);
  std::printf("first_finalize=%s\n",
              (*first_runtime)->Finalize().ToString().c_str());
  ScopedRuntime runtime(TestOptions());
  {
    GILGuard gil;
    pyscope::Exec("marker = 'second'");
  }
  advance(2);
  wait_for(3);
  {
    GILGuard gil;
    std::printf("states_with_worker=%d\n",
                CountThreadStates(runtime.main_interpreter()));
  }
  advance(4);
  worker.join();
  {
    GILGuard gil;
    std::printf("states_after_exit=%d\n",
                CountThreadStates(runtime.main_interpreter()));
  }
  std::printf("second_finalize=%s\n", runtime.Finalize().ToString().c_str());
  return 0;
}

TEST_SUITE("gil") {
  TEST_CASE("GILGuard before any runtime is kFailedPrecondition") {
    ChildResult child = RunScenario("GuardBeforeAnyRuntime");
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(child.out.find("throwing=FAILED_PRECONDITION\n") !=
          std::string::npos);
    CHECK(child.out.find("no pyscope::ScopedRuntime") != std::string::npos);
    CHECK(child.out.find("nothrow_ok=0\n") != std::string::npos);
    CHECK(child.out.find("nothrow=FAILED_PRECONDITION\n") != std::string::npos);
    CHECK(child.out.find("level=0\n") != std::string::npos);
  }

  TEST_CASE("GILGuard during finalization is kUnavailable at once") {
    ChildResult child =
        RunScenario("GuardDuringFinalization", absl::Seconds(20));
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(child.out.find("throwing=UNAVAILABLE\n") != std::string::npos);
    CHECK(child.out.find("being finalized") != std::string::npos);
    CHECK(child.out.find("nothrow=UNAVAILABLE\n") != std::string::npos);
    CHECK(child.out.find("finalize=OK\n") != std::string::npos);
  }

  TEST_CASE("a thread outliving a runtime never touches its freed state") {
    ChildResult child =
        RunScenario("ThreadOutlivesRuntimes", absl::Seconds(20));
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(child.out.find("first_finalize=OK\n") != std::string::npos);
    CHECK(child.out.find("second_marker=second\n") != std::string::npos);
    CHECK(child.out.find("fresh_tstate=1\n") != std::string::npos);
    CHECK(child.out.find("states_with_worker=2\n") != std::string::npos);
    CHECK(child.out.find("states_after_exit=1\n") != std::string::npos);
    CHECK(child.out.find("second_finalize=OK\n") != std::string::npos);
  }
}

}  // namespace
