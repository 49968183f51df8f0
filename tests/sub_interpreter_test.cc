// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// SubInterpreter and SubInterpreterOptions: option checks, entry from many
// threads, own GILs running at the same time, nesting across interpreters,
// the end protocol, runtime finalization with live sub-interpreters,
// extension modules that refuse sub-interpreters, isolation, and the
// Exec / TryExec / Call helpers.
//
// The binary creates one ScopedRuntime for the whole process (the main() of
// pyscope/testing.h);
// scenarios that finalize the runtime run in child processes.

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#define DOCTEST_CONFIG_IMPLEMENT
#define PYSCOPE_TESTING_MAIN
#define PYSCOPE_TESTING_OPTIONS
#define PYSCOPE_TESTING_PRE_MAIN
#include "doctest/doctest.h"
#include "pyscope/pyscope.h"
#include "pyscope/testing.h"
#include "support/python_helpers.h"
#include "support/scenario.h"
#include "support/sync.h"

namespace {

using pyscope::AllowThreads;
using pyscope::GILGuard;
using pyscope::PythonError;
using pyscope::SubInterpreter;
using pyscope::SubInterpreterOptions;
using pyscope_test::ChildResult;
using pyscope_test::CountThreadStates;
using pyscope_test::EvalBool;
using pyscope_test::EvalLong;
using pyscope_test::EvalString;
using pyscope_test::RunScenario;

// Whether this CPython has per-interpreter GILs (3.12+).
constexpr bool kOwnGilAvailable =
    pyscope::detail::compat::kHasPerInterpreterGil;

// Whether holding an interpreter's GIL keeps its other threads from running
// (false on the free-threaded build).
constexpr bool kGilExcludes = pyscope::detail::compat::kGilExcludesOtherThreads;

// Whether sub-interpreters may load single-phase init extension modules
// (false on the free-threaded build, which refuses Legacy()).
constexpr bool kLegacyAvailable =
    pyscope::detail::compat::kSubInterpretersLoadSinglePhaseModules;

// Whether Current() is this thread's own (3.12+) rather than the process-wide
// GIL holder's.
constexpr bool kThreadLocalCurrent =
    pyscope::detail::compat::kCurrentThreadStateIsThreadLocal;

// The thread state attached on this thread, without CPython's checks.
PyThreadState* Current() {
  return pyscope::detail::compat::CurrentThreadStateUnchecked();
}

// CPython's id of the interpreter the calling thread runs in.
int64_t CurrentInterpreterId() PYSCOPE_REQUIRES_GIL {
  return PyInterpreterState_GetID(PyThreadState_GetInterpreter(Current()));
}

// Whether an interpreter with CPython id `id` exists. Requires the GIL.
bool InterpreterExists(int64_t id) PYSCOPE_REQUIRES_GIL {
  for (PyInterpreterState* interp = PyInterpreterState_Head();
       interp != nullptr; interp = PyInterpreterState_Next(interp)) {
    if (PyInterpreterState_GetID(interp) == id) return true;
  }
  return false;
}

using pyscope_test::WaitFor;

// --- C functions installed into interpreters ------------------------------

// Flags shared by every interpreter of the process: Python code in one
// interpreter signals C++ (and, through it, another interpreter).
std::atomic<bool> waiter_started{false};
std::atomic<bool> flag_set{false};
std::atomic<int> marks{0};

// wait_for_flag(timeout_seconds) -> bool: spins until set_flag() was called
// in any interpreter, WITHOUT releasing the GIL of the calling interpreter.
PyObject* WaitForFlag(PyObject*, PyObject* arg) {
  PYSCOPE_ASSERT_GIL_HELD();  // called by CPython with the GIL held
  const double seconds = PyFloat_AsDouble(arg);
  if (seconds == -1.0 && PyErr_Occurred() != nullptr) return nullptr;
  waiter_started.store(true);
  const absl::Time deadline = absl::Now() + absl::Seconds(seconds);
  while (!flag_set.load()) {
    if (absl::Now() >= deadline) Py_RETURN_FALSE;
    std::this_thread::yield();
  }
  Py_RETURN_TRUE;
}

// set_flag() -> None.
PyObject* SetFlag(PyObject*, PyObject*) {
  flag_set.store(true);
  Py_RETURN_NONE;
}

// mark() -> None: counts calls, visible to C++ after the interpreter ended.
PyObject* Mark(PyObject*, PyObject*) {
  marks.fetch_add(1);
  Py_RETURN_NONE;
}

PyMethodDef wait_for_flag_def = {"wait_for_flag", WaitForFlag, METH_O, nullptr};
PyMethodDef set_flag_def = {"set_flag", SetFlag, METH_NOARGS, nullptr};
PyMethodDef mark_def = {"mark", Mark, METH_NOARGS, nullptr};

// Binds a new function object for `def` as `__main__.<name>` of the
// interpreter the calling thread is attached to.
void InstallFunction(PyMethodDef* def) PYSCOPE_REQUIRES_GIL {
  PyObject* main_module = PyImport_AddModule("__main__");  // borrowed
  if (main_module == nullptr) throw PythonError::FetchAndClear();
  PyObject* function = PyCFunction_New(def, nullptr);
  if (function == nullptr) throw PythonError::FetchAndClear();
  const int set = PyObject_SetAttrString(main_module, def->ml_name, function);
  Py_DECREF(function);
  if (set != 0) throw PythonError::FetchAndClear();
}

// Reads and increments the integer `__main__.n` with the GIL held
// throughout (the C API never releases it here, unlike `n += 1` in Python).
long IncrementCounter() PYSCOPE_REQUIRES_GIL {
  PyObject* globals = PyModule_GetDict(PyImport_AddModule("__main__"));
  PyObject* value = PyDict_GetItemString(globals, "n");  // borrowed
  const long next = PyLong_AsLong(value) + 1;
  PyObject* boxed = PyLong_FromLong(next);
  PyDict_SetItemString(globals, "n", boxed);
  Py_DECREF(boxed);
  return next;
}

using pyscope_test::CreatableOptions;

// --- Scenarios (child processes) -------------------------------------------

// Failed expectations of the running scenario; each is printed with its
// place, and the scenario exits with 1.
int child_failures = 0;

#define EXPECT_IN_CHILD(condition)                                 \
  do {                                                             \
    if (!(condition)) {                                            \
      ++child_failures;                                            \
      std::printf("EXPECTATION FAILED at line %d: %s\n", __LINE__, \
                  #condition);                                     \
    }                                                              \
  } while (false)

// Finalizes the scenario's runtime and returns its exit code.
int FinishScenario(pyscope::ScopedRuntime& runtime) {
  const absl::Status finalized = runtime.Finalize();
  std::printf("finalize=%s\n", finalized.ToString().c_str());
  EXPECT_IN_CHILD(finalized.ok());
  std::printf("scenario finished, %d failure(s)\n", child_failures);
  return child_failures == 0 ? 0 : 1;
}

// Runs scenario `name` in a child process and checks that it finished
// without a failed expectation.
void ExpectScenarioPasses(const char* name,
                          absl::Duration timeout = absl::Seconds(30)) {
  const ChildResult child = RunScenario(name, timeout);
  CHECK_MESSAGE(child.ExitedWith(0), child.Describe());
  CHECK_MESSAGE(absl::StrContains(child.out, "scenario finished, 0 failure"),
                child.Describe());
  CHECK_MESSAGE(child.err.empty(), child.Describe());
}

// --- Options ---------------------------------------------------------------

// Creates an interpreter with `options`, which must be refused with `code`,
// and checks that the calling thread's thread state did not change.
void ExpectRefused(const SubInterpreterOptions& options,
                   absl::StatusCode code) {
  PyThreadState* before = Current();
  auto created = SubInterpreter::Create(options);
  CHECK(Current() == before);
  if (created.ok()) {
    FAIL_CHECK("options were accepted");
    return;
  }
  CHECK(created.status().code() == code);
  CHECK(created.status() == pyscope::ValidateSubInterpreterOptions(options));
  try {
    SubInterpreter thrown(options);
    FAIL("the throwing constructor accepted refused options");
  } catch (const pyscope::Error& error) {
    CHECK(error.status().code() == code);
  }
  CHECK(Current() == before);
}

TEST_CASE("options needing 3.12 are refused before 3.12, others validated") {
  SubInterpreterOptions own_gil = SubInterpreterOptions::Default();
  own_gil.gil = SubInterpreterOptions::Gil::kOwn;
  own_gil.use_main_obmalloc = false;
  own_gil.check_multi_interp_extensions = true;
  SubInterpreterOptions no_fork = SubInterpreterOptions::Default();
  no_fork.allow_fork = false;
  // use_main_obmalloc = false without check_multi_interp_extensions.
  SubInterpreterOptions own_obmalloc_unchecked =
      SubInterpreterOptions::Legacy();
  own_obmalloc_unchecked.use_main_obmalloc = false;
  // Own GIL sharing the main interpreter's allocator.
  SubInterpreterOptions own_gil_main_obmalloc =
      SubInterpreterOptions::Isolated();
  own_gil_main_obmalloc.use_main_obmalloc = true;

  auto check_all = [&] {
    if (kOwnGilAvailable) {
      CHECK(pyscope::ValidateSubInterpreterOptions(own_gil).ok());
      CHECK(pyscope::ValidateSubInterpreterOptions(no_fork).ok());
      // (The free-threaded build refuses every unchecked interpreter first.)
      ExpectRefused(own_obmalloc_unchecked,
                    kLegacyAvailable ? absl::StatusCode::kInvalidArgument
                                     : absl::StatusCode::kUnimplemented);
      ExpectRefused(own_gil_main_obmalloc, absl::StatusCode::kInvalidArgument);
      CHECK(absl::StrContains(
          pyscope::ValidateSubInterpreterOptions(own_obmalloc_unchecked)
              .message(),
          "check_multi_interp_extensions"));
    } else {
      ExpectRefused(SubInterpreterOptions::Isolated(),
                    absl::StatusCode::kUnimplemented);
      ExpectRefused(own_gil, absl::StatusCode::kUnimplemented);
      ExpectRefused(no_fork, absl::StatusCode::kUnimplemented);
      ExpectRefused(own_obmalloc_unchecked, absl::StatusCode::kUnimplemented);
      ExpectRefused(own_gil_main_obmalloc, absl::StatusCode::kUnimplemented);
      CHECK(absl::StrContains(
          pyscope::ValidateSubInterpreterOptions(own_gil).message(), "3.12"));
    }
    SubInterpreterOptions negative = SubInterpreterOptions::Default();
    negative.end_deadline = absl::Seconds(-1);
    ExpectRefused(negative, absl::StatusCode::kInvalidArgument);
    if (kLegacyAvailable) {
      CHECK(pyscope::ValidateSubInterpreterOptions(
                SubInterpreterOptions::Legacy())
                .ok());
    } else {
      // Free-threaded build: Legacy() cannot be created; Default() is it
      // with single-phase modules refused, as CPython's Py_NewInterpreter.
      ExpectRefused(SubInterpreterOptions::Legacy(),
                    absl::StatusCode::kUnimplemented);
      CHECK(absl::StrContains(pyscope::ValidateSubInterpreterOptions(
                                  SubInterpreterOptions::Legacy())
                                  .message(),
                              "free-threaded"));
    }
  };

  SUBCASE("from a detached thread") {
    std::thread worker([&] {
      CHECK(Current() == nullptr);
      check_all();
      CHECK(Current() == nullptr);
      CHECK(pyscope::AttachedThreads().empty());
    });
    worker.join();
  }
  SUBCASE("from inside a GILGuard of the main interpreter") {
    GILGuard gil;
    PyThreadState* before = PyThreadState_Get();
    pyscope::Exec("canary = 'main'");
    check_all();
    CHECK(PyThreadState_Get() == before);
    CHECK(CurrentInterpreterId() == 0);
    CHECK(EvalString("canary") == "main");
  }
  SUBCASE("from inside a sub-interpreter scope") {
    SubInterpreter sub;
    GILGuard gil(sub);
    PyThreadState* before = PyThreadState_Get();
    pyscope::Exec("canary = 'sub'");
    check_all();
    CHECK(PyThreadState_Get() == before);
    CHECK(CurrentInterpreterId() == sub.id());
    CHECK(EvalString("canary") == "sub");
  }
}

TEST_CASE("creation leaves the caller where it was and reports the options") {
  for (const auto& entry : CreatableOptions()) {
    const char* name = entry.first;
    const SubInterpreterOptions& options = entry.second;
    INFO("options: " << std::string(name));
    PyThreadState* before_detached = Current();
    auto created = SubInterpreter::Create(options);
    REQUIRE(created.ok());
    SubInterpreter& sub = **created;
    CHECK(Current() == before_detached);
    CHECK(sub.alive());
    CHECK(sub.id() > 0);
    CHECK(sub.interpreter_state() != nullptr);
    CHECK(sub.own_gil() == (options.gil == SubInterpreterOptions::Gil::kOwn));
    {
      GILGuard gil;
      PyThreadState* before = PyThreadState_Get();
      SubInterpreter inner(options);
      CHECK(PyThreadState_Get() == before);
      CHECK(CurrentInterpreterId() == 0);
      CHECK(inner.id() != sub.id());
    }
    CHECK(sub.End().ok());
  }
}

// --- Entering -------------------------------------------------------------

TEST_CASE("many threads enter at once, each with one cached thread state") {
  constexpr int kThreads = 8;
  constexpr int kEntries = 200;
  for (const auto& entry : CreatableOptions()) {
    const char* name = entry.first;
    const SubInterpreterOptions& options = entry.second;
    INFO("options: " << std::string(name));
    SubInterpreter sub(options);
    sub.Exec("n = 0");
    std::atomic<bool> go{false};
    std::atomic<int> reused{0};
    std::atomic<int> in_sub{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        WaitFor(go);
        PyThreadState* first = nullptr;
        for (int i = 0; i < kEntries; ++i) {
          GILGuard gil(sub);
          if (first == nullptr) first = PyThreadState_Get();
          if (PyThreadState_Get() == first) reused.fetch_add(1);
          if (CurrentInterpreterId() == sub.id()) in_sub.fetch_add(1);
          IncrementCounter();
        }
        // Leaving restores "no thread state" on this thread.
        if (kThreadLocalCurrent) CHECK(Current() == nullptr);
      });
    }
    go.store(true);
    for (std::thread& thread : threads) thread.join();
    CHECK(reused.load() == kThreads * kEntries);
    CHECK(in_sub.load() == kThreads * kEntries);
    GILGuard gil(sub);
    if (kGilExcludes) {
      CHECK(EvalLong("n") == kThreads * kEntries);
    } else {
      // Free-threaded build: the threads ran inside `sub` at the same time,
      // so unsynchronized read-modify-writes of `n` may be lost.
      CHECK(EvalLong("n") >= 1);
      CHECK(EvalLong("n") <= kThreads * kEntries);
    }
    // The workers exited: their cached states went with them; the creating
    // thread's state remains.
    CHECK(CountThreadStates(sub.interpreter_state()) == 1);
  }
}

TEST_CASE("own GILs let two interpreters run at the same time") {
  // A's Python code calls wait_for_flag(), which holds A's GIL until B's
  // Python code calls set_flag(). B can only run if it does not need A's GIL.
  auto run = [](SubInterpreter& a, SubInterpreter& b, double timeout) {
    waiter_started.store(false);
    flag_set.store(false);
    a.Call([] { InstallFunction(&wait_for_flag_def); });
    b.Call([] { InstallFunction(&set_flag_def); });
    std::thread thread_a(
        [&] { a.Exec(absl::StrCat("result = wait_for_flag(", timeout, ")")); });
    std::thread thread_b([&] {
      WaitFor(waiter_started);
      b.Exec("set_flag()");
    });
    thread_a.join();
    thread_b.join();
    return a.Call([] { return EvalBool("result"); });
  };

  SUBCASE("shared GIL (Default): B waits until A gives up") {
    SubInterpreter a;
    SubInterpreter b;
    if (!kGilExcludes) {
      // Free-threaded build: no GIL to share, so B runs while A spins.
      CHECK(run(a, b, 5.0));
      return;
    }
    const absl::Time start = absl::Now();
    CHECK_FALSE(run(a, b, 0.3));
    CHECK(absl::Now() - start >= absl::Milliseconds(300));
  }
  SUBCASE("own GILs (Isolated, 3.12+): B runs while A holds its GIL") {
    if (!kOwnGilAvailable) {
      CHECK(SubInterpreter::Create(SubInterpreterOptions::Isolated())
                .status()
                .code() == absl::StatusCode::kUnimplemented);
      return;
    }
    SubInterpreter a(SubInterpreterOptions::Isolated());
    SubInterpreter b(SubInterpreterOptions::Isolated());
    const absl::Time start = absl::Now();
    CHECK(run(a, b, 5.0));
    CHECK(absl::Now() - start < absl::Seconds(5));
  }
}

TEST_CASE("nesting main -> sub A -> sub B restores each level") {
  for (const auto& entry : CreatableOptions()) {
    const char* name = entry.first;
    const SubInterpreterOptions& options = entry.second;
    INFO("options: " << std::string(name));
    SubInterpreter a(options);
    SubInterpreter b(options);
    a.Exec("where = 'A'");
    b.Exec("where = 'B'");

    // Checks the interpreter of this level; a plain GILGuard stays in it.
    auto check_level = [](const char* where, int64_t id) {
      CHECK(EvalString("where") == where);
      CHECK(CurrentInterpreterId() == id);
      GILGuard plain;
      CHECK(EvalString("where") == where);
      CHECK(CurrentInterpreterId() == id);
    };

    SUBCASE("starting in the main interpreter") {
      GILGuard main_gil;
      pyscope::Exec("where = 'main'");
      PyThreadState* main_state = PyThreadState_Get();
      check_level("main", 0);
      {
        GILGuard in_a(a);
        PyThreadState* a_state = PyThreadState_Get();
        check_level("A", a.id());
        {
          GILGuard in_b(b);
          check_level("B", b.id());
          {
            GILGuard a_again(a);  // back into A from B, same thread state
            check_level("A", a.id());
            CHECK(PyThreadState_Get() == a_state);
          }
          check_level("B", b.id());
        }
        check_level("A", a.id());
        CHECK(PyThreadState_Get() == a_state);
      }
      check_level("main", 0);
      CHECK(PyThreadState_Get() == main_state);
    }
    SUBCASE("starting detached on a new thread") {
      std::thread worker([&] {
        {
          GILGuard in_a(a);
          check_level("A", a.id());
          {
            GILGuard in_b(b);
            check_level("B", b.id());
            {
              GILGuard same_b(b);  // nested entry of the same interpreter
              check_level("B", b.id());
            }
          }
          check_level("A", a.id());
          {
            // Releasing A's GIL and re-taking it stays in A.
            AllowThreads nogil;
            GILGuard again;
            check_level("A", a.id());
          }
        }
        if (kThreadLocalCurrent) CHECK(Current() == nullptr);
        GILGuard main_gil;  // afterwards a plain guard goes to main
        CHECK(CurrentInterpreterId() == 0);
      });
      worker.join();
    }
  }
}

TEST_CASE("GILGuard() from code running in a sub-interpreter stays there") {
  // A C function called by Python code of the sub-interpreter opens a plain
  // GILGuard (borrowing the attachment), as a callback would.
  static std::atomic<int64_t> seen_id{-1};
  static PyMethodDef probe_def = {"probe",
                                  [](PyObject*, PyObject*) -> PyObject* {
                                    GILGuard gil;
                                    seen_id.store(CurrentInterpreterId());
                                    return PyUnicode_FromString("probed");
                                  },
                                  METH_NOARGS, nullptr};
  for (const auto& entry : CreatableOptions()) {
    const char* name = entry.first;
    const SubInterpreterOptions& options = entry.second;
    INFO("options: " << std::string(name));
    SubInterpreter sub(options);
    seen_id.store(-1);
    std::thread worker([&] {
      GILGuard gil(sub);
      InstallFunction(&probe_def);
      pyscope::Exec("answer = probe()");
      CHECK(EvalString("answer") == "probed");
    });
    worker.join();
    CHECK(seen_id.load() == sub.id());
  }
}

// From 3.12 CPython binds PyGILState to the thread state a thread attaches,
// so C code that calls PyGILState_Ensure while the thread runs in a
// sub-interpreter (a ctypes callback, an extension's callback) stays in that
// sub-interpreter. pyscope's scopes keep that working where
// pygilstate_follows_scope asks for it. (Before 3.12 PyGILState_Ensure
// inside a sub-interpreter deadlocks in CPython itself.)
PYSCOPE_SCENARIO(PyGILStateInsideSubInterpreter) {
  pyscope::ScopedRuntime runtime(pyscope_test::TestOptions());
  for (const auto& entry : CreatableOptions()) {
    const char* name = entry.first;
    SubInterpreterOptions options = entry.second;
    options.pygilstate_follows_scope = true;
    std::printf("options=%s\n", name);
    SubInterpreter sub(options);
    auto ensure_stays = [&sub] {
      GILGuard gil(sub);
      PyThreadState* before = PyThreadState_Get();
      const PyGILState_STATE state = PyGILState_Ensure();
      EXPECT_IN_CHILD(CurrentInterpreterId() == sub.id());
      PyGILState_Release(state);
      EXPECT_IN_CHILD(PyThreadState_Get() == before);
    };
    ensure_stays();  // on the creating thread
    std::thread worker(ensure_stays);
    worker.join();
    if (!options.check_multi_interp_extensions) {
      // _ctypes is a single-phase module: Legacy() interpreters only.
      const absl::Status status = sub.TryExec(R"py(
import ctypes
callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)(lambda x: 2 * x)
doubled = callback(21)
)py");
      std::printf("ctypes=%s\n", status.ToString().c_str());
      EXPECT_IN_CHILD(status.ok());
      EXPECT_IN_CHILD(sub.Call([] { return EvalLong("doubled"); }) == 42);
    }
  }
  return FinishScenario(runtime);
}

// With pygilstate_follows_scope off (Isolated()'s default), entering and
// leaving an own-GIL interpreter never takes the main GIL: a worker goes in
// and out while another thread holds the main GIL throughout, and the
// thread's PyGILState binding never leaves its main state.
PYSCOPE_SCENARIO(OwnGilEntryNeverTakesMainGil) {
  pyscope::ScopedRuntime runtime(pyscope_test::TestOptions());
  SubInterpreter sub(SubInterpreterOptions::Isolated());
  std::atomic<bool> main_held{false};
  std::atomic<bool> done{false};
  std::atomic<int> round_trips{0};
  std::atomic<bool> binding_kept{true};
  std::atomic<bool> worker_ready{false};
  std::thread worker([&] {
    PyThreadState* main_state = nullptr;
    {
      GILGuard gil;  // the thread's main state exists and is bound
      main_state = PyThreadState_Get();
    }
    worker_ready.store(true);
    WaitFor(main_held);
    for (int i = 0; i < 200; ++i) {
      GILGuard gil(sub);
      if (PyGILState_GetThisThreadState() != main_state) {
        binding_kept.store(false);
      }
      round_trips.fetch_add(1);
    }
    if (PyGILState_GetThisThreadState() != main_state)
      binding_kept.store(false);
    done.store(true);
  });
  WaitFor(worker_ready);
  {
    GILGuard gil;  // held until the worker is done (or the test times out)
    main_held.store(true);
    while (!done.load()) std::this_thread::yield();
  }
  worker.join();
  std::printf("round_trips=%d\n", round_trips.load());
  EXPECT_IN_CHILD(round_trips.load() == 200);
  EXPECT_IN_CHILD(binding_kept.load());
  return FinishScenario(runtime);
}

TEST_CASE("own-GIL entry and exit never take the main GIL") {
  if (!kOwnGilAvailable) {
    MESSAGE("no own GIL before CPython 3.12");
    return;
  }
  ExpectScenarioPasses("OwnGilEntryNeverTakesMainGil", absl::Seconds(20));
}

TEST_CASE("PyGILState_Ensure inside a sub-interpreter scope stays there") {
  if (!kOwnGilAvailable) {
    MESSAGE(
        "CPython before 3.12 deadlocks in PyGILState_Ensure inside a "
        "sub-interpreter; nothing for pyscope to keep");
    return;
  }
  ExpectScenarioPasses("PyGILStateInsideSubInterpreter", absl::Seconds(20));
}

// From 3.12 attaching a thread state also makes it the thread's PyGILState
// state. After a sub-interpreter scope ends, the thread's binding must not
// stay on the sub-interpreter's state: another thread may end the
// interpreter and delete that state, leaving the binding dangling. (Only
// pointers are compared here; nothing is dereferenced.)
TEST_CASE("leaving a sub-interpreter scope leaves PyGILState off its state") {
  for (const auto& entry : CreatableOptions()) {
    const char* name = entry.first;
    const SubInterpreterOptions& options = entry.second;
    INFO("options: " << std::string(name));
    SubInterpreter sub(options);
    std::atomic<PyThreadState*> sub_state{nullptr};
    std::atomic<PyThreadState*> bound_after{nullptr};
    SUBCASE("entered from a detached thread") {
      std::thread worker([&] {
        {
          GILGuard gil(sub);
          sub_state.store(PyThreadState_Get());
        }
        bound_after.store(PyGILState_GetThisThreadState());
      });
      worker.join();
    }
    SUBCASE("entered inside AllowThreads") {
      std::atomic<PyThreadState*> main_state{nullptr};
      std::thread worker([&] {
        GILGuard main_gil;
        main_state.store(PyThreadState_Get());
        AllowThreads nogil;
        {
          GILGuard gil(sub);
          sub_state.store(PyThreadState_Get());
        }
        bound_after.store(PyGILState_GetThisThreadState());
      });
      worker.join();
      CHECK(bound_after.load() == main_state.load());
    }
    SUBCASE("entered from the main interpreter") {
      std::thread worker([&] {
        GILGuard main_gil;
        {
          GILGuard gil(sub);
          sub_state.store(PyThreadState_Get());
        }
        bound_after.store(PyGILState_GetThisThreadState());
        CHECK(bound_after.load() == PyThreadState_Get());
      });
      worker.join();
    }
    CHECK(sub_state.load() != nullptr);
    CHECK(bound_after.load() != sub_state.load());
  }
}

// The same, with the interpreter ended by another thread while the thread
// that used it waits inside AllowThreads; leaving AllowThreads re-attaches
// the thread's main state, which on 3.12+ consults the PyGILState binding.
PYSCOPE_SCENARIO(EndWhileUserWaitsInAllowThreads) {
  pyscope::ScopedRuntime runtime(pyscope_test::TestOptions());
  for (const auto& entry : CreatableOptions()) {
    const char* name = entry.first;
    const SubInterpreterOptions& options = entry.second;
    std::printf("options=%s\n", name);
    SubInterpreter sub(options);
    std::atomic<bool> used{false};
    std::atomic<bool> ended{false};
    bool bound_to_sub = true;
    bool back_in_main = false;
    std::thread worker([&] {
      GILGuard main_gil;
      pyscope::Exec("import threading");
      {
        AllowThreads nogil;
        PyThreadState* in_sub = nullptr;
        {
          GILGuard gil(sub);
          pyscope::Exec("import threading");
          in_sub = PyThreadState_Get();
        }
        used.store(true);
        WaitFor(ended);
        bound_to_sub = PyGILState_GetThisThreadState() == in_sub;
      }
      back_in_main = CurrentInterpreterId() == 0;
      pyscope::Exec("x = 1");
    });
    EXPECT_IN_CHILD(WaitFor(used));
    const absl::Status status = sub.End();
    std::printf("end=%s\n", status.ToString().c_str());
    EXPECT_IN_CHILD(status.ok());
    ended.store(true);
    worker.join();
    EXPECT_IN_CHILD(!bound_to_sub);
    EXPECT_IN_CHILD(back_in_main);
  }
  return FinishScenario(runtime);
}

TEST_CASE("End while a thread that used it waits inside AllowThreads") {
  ExpectScenarioPasses("EndWhileUserWaitsInAllowThreads");
}

// --- Ending ---------------------------------------------------------------

// Ending from another thread deletes the cached thread states of every
// thread that entered the interpreter, while those threads live on. The
// scenarios that do so run in child processes: a thread left with a dangling
// reference to a deleted thread state would corrupt the rest of the suite.

PYSCOPE_SCENARIO(EndRefusesEntriesAndWaitsForScope) {
  pyscope::ScopedRuntime runtime(pyscope_test::TestOptions());
  for (const auto& entry : CreatableOptions()) {
    const char* name = entry.first;
    const SubInterpreterOptions& options = entry.second;
    std::printf("options=%s\n", name);
    SubInterpreter sub(options);
    std::atomic<bool> entered{false};
    std::atomic<bool> release{false};
    std::atomic<bool> leaving{false};
    std::thread inside([&] {
      GILGuard gil(sub);
      entered.store(true);
      {
        AllowThreads nogil;
        WaitFor(release);
      }
      pyscope::Exec("x = 1");  // still usable while End waits
      leaving.store(true);
    });
    EXPECT_IN_CHILD(WaitFor(entered));

    absl::Status end_status = absl::UnknownError("not run");
    std::atomic<bool> end_returned{false};
    bool leaving_when_end_returned = false;
    std::thread ender([&] {
      end_status = sub.End();
      leaving_when_end_returned = leaving.load();
      end_returned.store(true);
    });

    // New entries are refused once End has started.
    absl::Status refused;
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      GILGuard probe(sub, std::nothrow);
      if (!probe.ok()) {
        refused = probe.status();
        break;
      }
    }
    EXPECT_IN_CHILD(refused.code() == absl::StatusCode::kUnavailable);
    EXPECT_IN_CHILD(absl::StrContains(refused.message(), "ending"));
    EXPECT_IN_CHILD(sub.TryExec("y = 1").code() ==
                    absl::StatusCode::kUnavailable);
    // A second End while the first one waits says so.
    EXPECT_IN_CHILD(sub.End().code() == absl::StatusCode::kUnavailable);
    absl::SleepFor(absl::Milliseconds(50));
    EXPECT_IN_CHILD(!end_returned.load());

    release.store(true);
    inside.join();
    ender.join();
    EXPECT_IN_CHILD(end_status.ok());
    EXPECT_IN_CHILD(leaving_when_end_returned);
    EXPECT_IN_CHILD(!sub.alive());
    // This thread entered (the probes) and another thread ended it: this
    // thread still works with the main interpreter.
    GILGuard gil;
    EXPECT_IN_CHILD(CurrentInterpreterId() == 0);
  }
  return FinishScenario(runtime);
}

TEST_CASE("End refuses new entries and waits for a scope on another thread") {
  ExpectScenarioPasses("EndRefusesEntriesAndWaitsForScope");
}

TEST_CASE("End after its deadline names the thread; a later End succeeds") {
  for (const auto& entry : CreatableOptions()) {
    const char* name = entry.first;
    const SubInterpreterOptions& base = entry.second;
    INFO("options: " << std::string(name));
    SubInterpreterOptions options = base;
    options.end_deadline = absl::Milliseconds(200);
    SubInterpreter sub(options);
    std::atomic<bool> entered{false};
    std::atomic<bool> release{false};
    std::atomic<long> tid{0};
    std::thread inside([&] {
      pthread_setname_np(pthread_self(), "stuck-in-sub");
      tid.store(pyscope_test::ThreadId());
      GILGuard gil(sub);
      entered.store(true);
      AllowThreads nogil;
      WaitFor(release);
    });
    REQUIRE(WaitFor(entered));

    const absl::Time start = absl::Now();
    absl::Status status = sub.End();
    CHECK(absl::Now() - start >= absl::Milliseconds(200));
    CHECK(status.code() == absl::StatusCode::kDeadlineExceeded);
    CHECK(absl::StrContains(status.message(), "stuck-in-sub"));
    CHECK(absl::StrContains(status.message(), absl::StrCat(tid.load())));
    CHECK(sub.alive());
    // Closed: no new entries until it is ended.
    GILGuard probe(sub, std::nothrow);
    CHECK(probe.status().code() == absl::StatusCode::kUnavailable);

    release.store(true);
    inside.join();
    CHECK(sub.End().ok());
    CHECK_FALSE(sub.alive());
    CHECK(sub.End().ok());  // idempotent
  }
}

// The creating thread used the interpreter (and imported threading there,
// which ties threading's main-thread bookkeeping to its thread state); a
// different thread ends it; then the creating thread uses Python again,
// through pyscope and through PyGILState as a host would.
PYSCOPE_SCENARIO(EndFromAnotherThread) {
  pyscope::ScopedRuntime runtime(pyscope_test::TestOptions());
  for (const auto& entry : CreatableOptions()) {
    const char* name = entry.first;
    const SubInterpreterOptions& options = entry.second;
    std::printf("options=%s\n", name);
    SubInterpreter sub(options);
    sub.Exec("import threading\nx = 1");
    const int64_t id = sub.id();
    absl::Status status = absl::UnknownError("not run");
    bool detached_after = false;
    std::thread ender([&] {
      status = sub.End();
      detached_after = !kThreadLocalCurrent || Current() == nullptr;
    });
    ender.join();
    std::printf("end=%s\n", status.ToString().c_str());
    EXPECT_IN_CHILD(status.ok());
    EXPECT_IN_CHILD(detached_after);
    EXPECT_IN_CHILD(!sub.alive());
    {
      GILGuard gil;
      EXPECT_IN_CHILD(!InterpreterExists(id));
      EXPECT_IN_CHILD(CurrentInterpreterId() == 0);
      pyscope::Exec("y = 1");
    }
    PyGILState_STATE state = PyGILState_Ensure();
    EXPECT_IN_CHILD(CurrentInterpreterId() == 0);
    PyGILState_Release(state);
  }
  return FinishScenario(runtime);
}

TEST_CASE("End from a thread other than the one that created and used it") {
  ExpectScenarioPasses("EndFromAnotherThread");
}

TEST_CASE("End while holding the GIL of another interpreter restores it") {
  for (const auto& entry : CreatableOptions()) {
    const char* name = entry.first;
    const SubInterpreterOptions& options = entry.second;
    INFO("options: " << std::string(name));
    SUBCASE("inside a GILGuard of the main interpreter") {
      SubInterpreter sub(options);
      GILGuard gil;
      pyscope::Exec("canary = 'main'");
      PyThreadState* before = PyThreadState_Get();
      const int64_t id = sub.id();
      CHECK(InterpreterExists(id));
      CHECK(sub.End().ok());
      CHECK(PyThreadState_Get() == before);
      CHECK(EvalString("canary") == "main");
      CHECK_FALSE(InterpreterExists(id));
    }
    SUBCASE("inside a scope of another sub-interpreter") {
      SubInterpreter sub(options);
      SubInterpreter other(options);
      GILGuard gil(other);
      pyscope::Exec("canary = 'other'");
      PyThreadState* before = PyThreadState_Get();
      CHECK(sub.End().ok());
      CHECK(PyThreadState_Get() == before);
      CHECK(CurrentInterpreterId() == other.id());
      CHECK(EvalString("canary") == "other");
    }
  }
}

TEST_CASE("End from inside a scope of that interpreter is refused") {
  for (const auto& entry : CreatableOptions()) {
    const char* name = entry.first;
    const SubInterpreterOptions& options = entry.second;
    INFO("options: " << std::string(name));
    SubInterpreter sub(options);
    {
      GILGuard gil(sub);
      PyThreadState* before = PyThreadState_Get();
      absl::Status status = sub.End();
      CHECK(status.code() == absl::StatusCode::kFailedPrecondition);
      CHECK(absl::StrContains(status.message(), "inside a scope"));
      CHECK(PyThreadState_Get() == before);
      pyscope::Exec("still = 'usable'");
      CHECK(EvalString("still") == "usable");
    }
    CHECK(sub.alive());
    CHECK(sub.End().ok());
  }
}

TEST_CASE("End joins non-daemon Python threads started inside") {
  for (const auto& entry : CreatableOptions()) {
    const char* name = entry.first;
    const SubInterpreterOptions& options = entry.second;
    INFO("options: " << std::string(name));
    marks.store(0);
    SubInterpreter sub(options);
    {
      GILGuard gil(sub);
      InstallFunction(&mark_def);
      pyscope::Exec(R"py(
import threading, time
def body():
    time.sleep(0.3)
    mark()
worker = threading.Thread(target=body)
worker.start()
)py");
    }
    CHECK(marks.load() == 0);
    CHECK(sub.End().ok());
    CHECK(marks.load() == 1);
    CHECK_FALSE(sub.alive());
  }
}

TEST_CASE("a running daemon thread makes End fail instead of aborting") {
  SubInterpreter sub;  // Default() allows daemon threads
  sub.Exec(R"py(
import threading
stop = threading.Event()
daemon = threading.Thread(target=stop.wait, daemon=True)
daemon.start()
)py");
  absl::Status status = sub.End();
  CHECK(status.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(absl::StrContains(status.message(), "daemon"));
  CHECK(absl::StrContains(status.message(), "not the last thread"));
  CHECK(sub.alive());
  // Still usable: stop the thread, then End succeeds.
  sub.Exec("stop.set()\ndaemon.join()");
  CHECK(sub.Call([] { return EvalBool("not daemon.is_alive()"); }));
  status = sub.End();
  CHECK(status.ok());
  CHECK_FALSE(sub.alive());

  if (kOwnGilAvailable) {
    // Isolated() interpreters refuse daemon threads up front.
    SubInterpreter isolated(SubInterpreterOptions::Isolated());
    absl::Status started = isolated.TryExec(
        "import threading\n"
        "threading.Thread(target=lambda: None, daemon=True).start()");
    CHECK(started.code() == absl::StatusCode::kUnknown);
    CHECK(absl::StrContains(started.message(), "RuntimeError"));
    CHECK(isolated.End().ok());
  }
}

// A concurrent.futures executor left running inside: its worker threads
// exit only when threading's exit hooks run (threading._shutdown, as at
// interpreter exit). End must run them rather than wait forever.
PYSCOPE_SCENARIO(EndWithRunningThreadPool) {
  pyscope::ScopedRuntime runtime(pyscope_test::TestOptions());
  for (const auto& entry : CreatableOptions()) {
    const char* name = entry.first;
    const SubInterpreterOptions& options = entry.second;
    std::printf("options=%s\n", name);
    SubInterpreter sub(options);
    sub.Exec(R"py(
from concurrent.futures import ThreadPoolExecutor
executor = ThreadPoolExecutor(max_workers=2)
futures = [executor.submit(sum, [i, i]) for i in range(4)]
total = sum(f.result() for f in futures)
)py");
    EXPECT_IN_CHILD(sub.Call([] { return EvalLong("total"); }) == 12);
    const absl::Status status = sub.End();
    std::printf("end=%s\n", status.ToString().c_str());
    EXPECT_IN_CHILD(status.ok());
    EXPECT_IN_CHILD(!sub.alive());
  }
  return FinishScenario(runtime);
}

TEST_CASE("End with a thread pool executor still running inside") {
  ExpectScenarioPasses("EndWithRunningThreadPool", absl::Seconds(20));
}

PYSCOPE_SCENARIO(UseAfterEnd) {
  pyscope::ScopedRuntime runtime(pyscope_test::TestOptions());
  for (const auto& entry : CreatableOptions()) {
    const char* name = entry.first;
    const SubInterpreterOptions& options = entry.second;
    std::printf("options=%s\n", name);
    SubInterpreter sub(options);
    const int64_t id = sub.id();
    // Threads that cached a thread state for the interpreter and outlive
    // it: End deletes those states; the threads must never touch them again.
    constexpr int kSurvivors = 2;
    std::atomic<int> entered{0};
    std::atomic<bool> ended{false};
    std::atomic<int> refused_late{0};
    std::atomic<int> main_afterwards{0};
    std::vector<std::thread> survivors;
    for (int i = 0; i < kSurvivors; ++i) {
      survivors.emplace_back([&, i] {
        {
          GILGuard gil(sub);
          if (i == 0) pyscope::Exec("import threading");
        }
        entered.fetch_add(1);
        WaitFor(ended);
        {
          GILGuard late(sub, std::nothrow);
          if (late.status().code() == absl::StatusCode::kFailedPrecondition) {
            refused_late.fetch_add(1);
          }
        }
        {
          GILGuard main_gil;  // the thread still works with the main one
          if (CurrentInterpreterId() == 0) main_afterwards.fetch_add(1);
        }
        PyGILState_STATE state = PyGILState_Ensure();
        if (CurrentInterpreterId() == 0) main_afterwards.fetch_add(1);
        PyGILState_Release(state);
      });
    }
    while (entered.load() < kSurvivors) absl::SleepFor(absl::Milliseconds(1));
    const absl::Status ended_status = sub.End();
    std::printf("end=%s\n", ended_status.ToString().c_str());
    EXPECT_IN_CHILD(ended_status.ok());
    ended.store(true);
    for (std::thread& survivor : survivors) survivor.join();
    EXPECT_IN_CHILD(refused_late.load() == kSurvivors);
    EXPECT_IN_CHILD(main_afterwards.load() == 2 * kSurvivors);

    EXPECT_IN_CHILD(!sub.alive());
    EXPECT_IN_CHILD(sub.id() == id);
    EXPECT_IN_CHILD(sub.interpreter_state() == nullptr);
    EXPECT_IN_CHILD(sub.End().ok());
    {
      GILGuard probe(sub, std::nothrow);
      EXPECT_IN_CHILD(!probe.ok());
      EXPECT_IN_CHILD(probe.status().code() ==
                      absl::StatusCode::kFailedPrecondition);
      EXPECT_IN_CHILD(absl::StrContains(probe.status().message(), "has ended"));
    }
    EXPECT_IN_CHILD(sub.TryExec("x = 1").code() ==
                    absl::StatusCode::kFailedPrecondition);
    bool exec_threw = false;
    try {
      sub.Exec("x = 1");
    } catch (const pyscope::Error& error) {
      exec_threw =
          error.status().code() == absl::StatusCode::kFailedPrecondition;
    }
    EXPECT_IN_CHILD(exec_threw);
    bool call_threw = false;
    try {
      sub.Call([] { return 1; });
    } catch (const pyscope::Error&) {
      call_threw = true;
    }
    EXPECT_IN_CHILD(call_threw);
  }
  return FinishScenario(runtime);
}

TEST_CASE("using a SubInterpreter after End is a status, never a crash") {
  ExpectScenarioPasses("UseAfterEnd");
}

TEST_CASE("the destructor ends the interpreter") {
  for (const auto& entry : CreatableOptions()) {
    const char* name = entry.first;
    const SubInterpreterOptions& options = entry.second;
    INFO("options: " << std::string(name));
    int64_t id = -1;
    {
      SubInterpreter sub(options);
      id = sub.id();
      sub.Exec("x = 1");
      GILGuard gil;
      CHECK(InterpreterExists(id));
    }
    GILGuard gil;
    CHECK_FALSE(InterpreterExists(id));
  }
}

// Finalizing the runtime with live sub-interpreters (one with a Python
// thread still running, one whose cached thread state belongs to a native
// thread that is still alive) ends them all first, on every version.
PYSCOPE_SCENARIO(FinalizeWithLiveSubInterpreters) {
  pyscope::ScopedRuntime runtime(pyscope_test::TestOptions());
  std::vector<std::unique_ptr<SubInterpreter>> subs;
  for (const auto& entry : CreatableOptions()) {
    const char* name = entry.first;
    const SubInterpreterOptions& options = entry.second;
    for (int i = 0; i < 2; ++i) {
      auto created = SubInterpreter::Create(options);
      if (!created.ok()) {
        std::printf("create %s: %s\n", name,
                    created.status().ToString().c_str());
        return 2;
      }
      subs.push_back(*std::move(created));
    }
  }
  subs[0]->Exec(R"py(
import threading, time
threading.Thread(target=time.sleep, args=(0.2,)).start()
)py");
  std::atomic<bool> entered{false};
  std::atomic<bool> finalized{false};
  std::thread parked([&] {
    for (auto& sub : subs) sub->Exec("x = 1");
    entered.store(true);
    WaitFor(finalized);
  });
  WaitFor(entered);
  absl::Status status = runtime.Finalize();
  finalized.store(true);
  parked.join();
  std::printf("finalize=%s\n", status.ToString().c_str());
  std::printf("state=%d\n", static_cast<int>(pyscope::GetRuntimeState()));
  int alive = 0;
  for (auto& sub : subs) alive += sub->alive() ? 1 : 0;
  std::printf("alive=%d\n", alive);
  std::printf("end_after=%s\n", subs[1]->End().ToString().c_str());
  subs.clear();  // destructors after finalization: nothing left to do
  std::printf("done\n");
  return status.ok() ? 0 : 1;
}

TEST_CASE("runtime finalization ends every live sub-interpreter first") {
  ChildResult child = RunScenario("FinalizeWithLiveSubInterpreters");
  REQUIRE_MESSAGE(child.ExitedWith(0), child.Describe());
  CHECK_MESSAGE(absl::StrContains(child.out, "finalize=OK"), child.Describe());
  CHECK(absl::StrContains(
      child.out,
      absl::StrCat("state=",
                   static_cast<int>(pyscope::RuntimeState::kFinalized))));
  CHECK(absl::StrContains(child.out, "alive=0"));
  CHECK(absl::StrContains(child.out, "end_after=OK"));
  CHECK(absl::StrContains(child.out, "done"));
  CHECK_MESSAGE(child.err.empty(), child.Describe());
}

// --- Extension modules and isolation ----------------------------------------

TEST_CASE("a single-phase extension module and sub-interpreters") {
  const std::string add_path = absl::StrCat("import sys\nsys.path.insert(0, '",
                                            PYSCOPE_TEST_EXT_DIR, "')");
  SUBCASE("Legacy imports it on every version with a GIL") {
    if (!kLegacyAvailable) {
      // Free-threaded build: Legacy() is refused before CPython is asked,
      // and Default() interpreters refuse the module like Isolated() ones.
      CHECK(SubInterpreter::Create(SubInterpreterOptions::Legacy())
                .status()
                .code() == absl::StatusCode::kUnimplemented);
      SubInterpreter sub;
      sub.Exec(add_path);
      absl::Status imported = sub.TryExec("import pyscope_single_phase");
      CHECK(absl::StrContains(imported.message(), "ImportError"));
      CHECK(absl::StrContains(imported.message(), "pyscope_single_phase"));
      CHECK(sub.End().ok());
      return;
    }
    SubInterpreter sub(SubInterpreterOptions::Legacy());
    sub.Exec(add_path);
    sub.Exec("import pyscope_single_phase");
    CHECK(sub.Call([] { return EvalLong("pyscope_single_phase.answer"); }) ==
          42);
  }
  SUBCASE("Isolated (3.12+) refuses it with ImportError naming it") {
    if (!kOwnGilAvailable) {
      CHECK(SubInterpreter::Create(SubInterpreterOptions::Isolated())
                .status()
                .code() == absl::StatusCode::kUnimplemented);
      return;
    }
    SubInterpreter sub(SubInterpreterOptions::Isolated());
    sub.Exec(add_path);
    try {
      sub.Exec("import pyscope_single_phase");
      FAIL("the single-phase module was imported");
    } catch (const PythonError& error) {
      CHECK(error.type_name() == "ImportError");
      CHECK(absl::StrContains(error.message(), "pyscope_single_phase"));
    }
    // The interpreter stays usable, and still lacks the module.
    sub.Exec("import json\nvalue = json.loads('[1, 2, 3]')[2]");
    CHECK(sub.Call([] { return EvalLong("value"); }) == 3);
    CHECK(sub.Call(
        [] { return EvalBool("'pyscope_single_phase' not in sys.modules"); }));
    CHECK(sub.End().ok());
  }
}

TEST_CASE("sys.modules, __main__ and sys.path are per interpreter") {
  for (const auto& entry : CreatableOptions()) {
    const char* name = entry.first;
    const SubInterpreterOptions& options = entry.second;
    INFO("options: " << std::string(name));
    SubInterpreter a(options);
    SubInterpreter b(options);
    a.Exec(R"py(
import sys, types
sys.modules['only_in_a'] = types.ModuleType('only_in_a')
sys.path.append('/only/in/a')
marker = 'A'
)py");
    const char* kProbe = R"py(
import sys
seen = ('only_in_a' in sys.modules, '/only/in/a' in sys.path,
        'marker' in globals())
)py";
    b.Exec(kProbe);
    CHECK(b.Call([] { return EvalString("seen"); }) == "(False, False, False)");
    {
      GILGuard main_gil;
      pyscope::Exec(kProbe);
      CHECK(EvalString("seen") == "(False, False, False)");
    }
    a.Exec(kProbe);
    CHECK(a.Call([] { return EvalString("seen"); }) == "(True, True, True)");
    // Each interpreter has its own sys module object.
    auto sys_id = [](SubInterpreter& sub) {
      return sub.Call([] { return EvalLong("id(__import__('sys'))"); });
    };
    CHECK(sys_id(a) != sys_id(b));
  }
}

// --- Helpers ----------------------------------------------------------------

TEST_CASE("Exec, TryExec and Call run in the interpreter") {
  for (const auto& entry : CreatableOptions()) {
    const char* name = entry.first;
    const SubInterpreterOptions& options = entry.second;
    INFO("options: " << std::string(name));
    SubInterpreter sub(options);
    sub.Exec("def double(v):\n    return 2 * v\n");
    CHECK(sub.TryExec("value = double(21)").ok());
    CHECK(sub.Call([] { return EvalLong("value"); }) == 42);
    CHECK(sub.Call([&] { return CurrentInterpreterId(); }) == sub.id());

    // Python exceptions.
    try {
      sub.Exec("raise ValueError('boom in sub')");
      FAIL("no exception");
    } catch (const PythonError& error) {
      CHECK(error.type_name() == "ValueError");
      CHECK(error.message() == "boom in sub");
      CHECK(absl::StrContains(error.traceback(), "boom in sub"));
      CHECK(error.status().code() == absl::StatusCode::kUnknown);
    }
    absl::Status status = sub.TryExec("1 / 0");
    CHECK(status.code() == absl::StatusCode::kUnknown);
    CHECK(absl::StrContains(status.message(), "ZeroDivisionError"));
    // SystemExit is an exception like any other: the process stays.
    status = sub.TryExec("import sys\nsys.exit(3)");
    CHECK(absl::StrContains(status.message(), "SystemExit"));

    // An exception thrown inside Call propagates after the interpreter was
    // left: the caller is back where it was.
    {
      GILGuard main_gil;
      PyThreadState* before = PyThreadState_Get();
      try {
        sub.Call([] {
          pyscope::Exec("raise KeyError('inside call')");
          return 0;
        });
        FAIL("no exception");
      } catch (const PythonError& error) {
        CHECK(error.type_name() == "KeyError");
        CHECK(PyThreadState_Get() == before);
        CHECK(CurrentInterpreterId() == 0);
        CHECK(PyErr_Occurred() == nullptr);
      }
    }
    // The interpreter has no pending error afterwards.
    CHECK(sub.Call([] { return PyErr_Occurred() == nullptr; }));
    CHECK(sub.Call([] { return EvalLong("double(5)"); }) == 10);
  }
}

}  // namespace

// One runtime for the whole suite (pyscope/testing.h's main), created and
// finalized on the main thread; scenarios run before it, in their own
// process.
pyscope::RuntimeOptions PyscopeTestRuntimeOptions() {
  return pyscope_test::TestOptions();
}

bool PyscopeTestingPreMain(int argc, char** argv, int* exit_code) {
  return pyscope_test::MaybeRunScenario(argc, argv, exit_code);
}
