// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// What CPython 3.14 changed for embedders, and what pyscope does about each
// change (docs/python314.md lists them with these tests). Every test passes
// on every supported CPython: where the behaviour differs by version, the
// expectation comes from the named constant of pyscope/detail/compat.h.
//
// - gh-113190: Py_FinalizeEx frees every interned string;
// - gh-87135: a late attach parks the thread forever instead of ending it;
// - GH-135991: threading.Lock raising at finalization (3.15, not 3.14.7);
// - PyThreadState_GetUnchecked replacing _PyThreadState_UncheckedGet;
// - PEP 741: the running configuration read back by name;
// - PEP 734: concurrent.interpreters next to pyscope's SubInterpreters;
// - the free-threaded build: a module that does not declare Py_mod_gil
//   turns the GIL on.

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "doctest/doctest.h"
#include "pyscope/pyscope.h"
#include "support/python_helpers.h"
#include "support/scenario.h"
#include "support/sync.h"

namespace {

namespace compat = pyscope::detail::compat;

using pyscope::AllowThreads;
using pyscope::GILGuard;
using pyscope::RuntimeOptions;
using pyscope::ScopedRuntime;
using pyscope::SubInterpreter;
using pyscope::SubInterpreterOptions;
using pyscope_test::ChildResult;
using pyscope_test::EvalBool;
using pyscope_test::EvalLong;
using pyscope_test::EvalString;
using pyscope_test::Event;
using pyscope_test::FactOf;
using pyscope_test::HasFact;
using pyscope_test::PrintFact;
using pyscope_test::RunScenario;
using pyscope_test::TestOptions;

// Binds `def` as `__main__.<name>` of the interpreter the thread is in.
void InstallFunction(PyMethodDef* def) PYSCOPE_REQUIRES_GIL {
  PyObject* function = PyCFunction_New(def, nullptr);
  if (function == nullptr) throw pyscope::PythonError::FetchAndClear();
  const int set = PyObject_SetAttrString(PyImport_AddModule("__main__"),
                                         def->ml_name, function);
  Py_DECREF(function);
  if (set != 0) throw pyscope::PythonError::FetchAndClear();
}

// --- gh-113190: Py_FinalizeEx frees every interned string ------------------

// Watches the object allocator for the release of two addresses. Installed
// over the running allocator (which it forwards to), as PyMem_SetAllocator
// allows after initialization.
PyMemAllocatorEx forwarded_allocator;
std::atomic<void*> watched[2] = {};
std::atomic<bool> watched_freed[2] = {};

void NoteRelease(void* pointer) {
  if (pointer == nullptr) return;
  for (int i = 0; i < 2; ++i) {
    if (pointer == watched[i].load()) watched_freed[i] = true;
  }
}
void* WatchMalloc(void*, size_t size) {
  return forwarded_allocator.malloc(forwarded_allocator.ctx, size);
}
void* WatchCalloc(void*, size_t count, size_t size) {
  return forwarded_allocator.calloc(forwarded_allocator.ctx, count, size);
}
void* WatchRealloc(void*, void* pointer, size_t size) {
  NoteRelease(pointer);
  return forwarded_allocator.realloc(forwarded_allocator.ctx, pointer, size);
}
void WatchFree(void*, void* pointer) {
  NoteRelease(pointer);
  forwarded_allocator.free(forwarded_allocator.ctx, pointer);
}

// The pattern that is right on every version: a C-level cache of an
// interned name that is rebuilt under each runtime (pyscope's generation
// changes with every initialization and finalization).
PyObject* CachedName() PYSCOPE_REQUIRES_GIL {
  static uint64_t cached_generation = 0;
  static PyObject* name = nullptr;  // valid only under cached_generation
  if (cached_generation != pyscope::RuntimeGeneration()) {
    name = PyUnicode_InternFromString("pyscope_cached_name");
    cached_generation = pyscope::RuntimeGeneration();
  }
  return name;
}

// The key object PyDict_SetItemString stored for `key` in `dict`
// (borrowed), or null.
PyObject* StoredKey(PyObject* dict, const char* key) PYSCOPE_REQUIRES_GIL {
  Py_ssize_t pos = 0;
  PyObject* found = nullptr;
  PyObject* value = nullptr;
  while (PyDict_Next(dict, &pos, &found, &value)) {
    if (PyUnicode_CompareWithASCIIString(found, key) == 0) return found;
  }
  return nullptr;
}

PYSCOPE_SCENARIO(InternedStringsAcrossRuntimes) {
  std::string error_text;
  {
    ScopedRuntime first(TestOptions());
    {
      GILGuard gil;
      PyMem_GetAllocator(PYMEM_DOMAIN_OBJ, &forwarded_allocator);
      PyMemAllocatorEx watch = {nullptr, WatchMalloc, WatchCalloc, WatchRealloc,
                                WatchFree};
      PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &watch);
      // What a host's static cache does: keep a reference to a string.
      // (a) One it interned itself (3.14: a mortal interned string, but
      //     immortal on the free-threaded build).
      PyObject* interned = PyUnicode_InternFromString("pyscope_kept_interned");
      watched[0] = interned;
      // (b) A key that CPython interned for it (PyDict_SetItemString; 3.12+
      //     interns it immortal, so the extra reference does not count).
      PyObject* dict = PyDict_New();
      PyDict_SetItemString(dict, "pyscope_kept_key", Py_None);
      PyObject* key = StoredKey(dict, "pyscope_kept_key");
      Py_INCREF(key);
      Py_DECREF(dict);
      watched[1] = key;
      PrintFact("interned", PyUnicode_CHECK_INTERNED(interned) != 0 &&
                                PyUnicode_CHECK_INTERNED(key) != 0);
      // pyscope itself keeps no Python object: a PythonError is values.
      try {
        pyscope::Exec("raise ValueError('first')");
      } catch (const pyscope::PythonError& error) {
        error_text = std::string(error.status().message());
      }
    }
    PrintFact("finalize_ok", first.Finalize().ok());
    PrintFact("interned_freed_by_finalize", watched_freed[0].load());
    PrintFact("key_freed_by_finalize", watched_freed[1].load());
  }
  PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &forwarded_allocator);
  watched[0] = nullptr;
  watched[1] = nullptr;
  PrintFact("error_after_finalize", error_text);
  long cycles_ok = 0;
  for (int cycle = 0; cycle < 3; ++cycle) {
    ScopedRuntime runtime(TestOptions());
    GILGuard gil;
    PyObject* globals = PyModule_GetDict(PyImport_AddModule("__main__"));
    PyObject* value = PyLong_FromLong(cycle);
    PyDict_SetItem(globals, CachedName(), value);
    Py_DECREF(value);
    if (EvalLong("pyscope_cached_name") == cycle) ++cycles_ok;
  }
  PrintFact("cycles_ok", cycles_ok);
  return 0;
}

TEST_SUITE("python314") {
  TEST_CASE("gh-113190: interned strings kept by C code and re-init") {
    ChildResult child = RunScenario("InternedStringsAcrossRuntimes");
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(HasFact(child, "interned=1"));
    CHECK(HasFact(child, "finalize_ok=1"));
    // A string C code interned itself and holds a reference to survives
    // Py_FinalizeEx: from 3.14 the public interning functions intern mortal
    // strings, before 3.14 immortal ones were leaked. Except on 3.14's
    // free-threaded build, where every interned string is immortal...
    CHECK(HasFact(child, absl::StrCat("interned_freed_by_finalize=",
                                      compat::kFinalizeFreesInternedStrings &&
                                              compat::kFreeThreaded
                                          ? 1
                                          : 0)));
    // ...and one CPython interned immortal is freed from 3.14, although a
    // reference is held (an immortal object does not count references);
    // before 3.14 it was leaked, so a pointer kept across a
    // re-initialization happened to stay valid.
    CHECK(HasFact(child,
                  absl::StrCat("key_freed_by_finalize=",
                               compat::kFinalizeFreesInternedStrings ? 1 : 0)));
    CHECK(HasFact(child, "error_after_finalize=ValueError: first"));
    CHECK(HasFact(child, "cycles_ok=3"));
  }
}

// --- gh-87135: attaching after finalization began --------------------------

// Prints `key`=1 when destroyed, and sets `done`: shows a thread was ended by
// unwinding its stack.
struct MarkOnUnwind {
  const char* key;
  std::atomic<bool>* done;
  ~MarkOnUnwind() {
    PrintFact(key, 1);
    done->store(true);
  }
};

Event* const worker_inside = new Event;  // never destroyed: see the hang
Event* const worker_may_return = new Event;
std::atomic<bool> worker_ended{false};
std::thread* worker_thread = nullptr;

// join_worker(): called from a __del__ while Py_FinalizeEx tears modules
// down (after it marked the runtime as finalizing): lets the native worker
// leave its AllowThreads and joins it, with the GIL held.
PyObject* JoinWorker(PyObject*, PyObject*) {
  PrintFact("finalizing_when_released", compat::IsFinalizing());
  worker_may_return->Set();
  worker_thread->join();
  PrintFact("joined_inside_finalize", 1);
  Py_RETURN_NONE;
}
PyMethodDef join_worker_def = {"join_worker", JoinWorker, METH_NOARGS, nullptr};

constexpr char kAtTeardown[] = R"py(
class AtTeardown:
    # Runs when Py_FinalizeEx clears __main__, after it marked the runtime
    # as finalizing. (The function is bound now: globals are gone by then.)
    def __init__(self, call):
        self.call = call
    def __del__(self):
        self.call()
)py";

PYSCOPE_SCENARIO(NativeThreadBackInsidePyFinalizeEx) {
  auto runtime = ScopedRuntime::Create(TestOptions());  // 200 ms drain
  if (!runtime.ok()) return 1;
  {
    GILGuard gil;
    InstallFunction(&join_worker_def);
    pyscope::Exec(kAtTeardown);
    pyscope::Exec("holder = AtTeardown(join_worker)");
  }
  std::thread worker([] {
    pthread_setname_np(pthread_self(), "late-native");
    MarkOnUnwind marker{"worker_unwound", &worker_ended};
    GILGuard gil;
    {
      AllowThreads nogil;
      worker_inside->Set();
      worker_may_return->Wait();
    }  // past the point of no return: pyscope ends the thread here
    PrintFact("worker_continued", 1);
  });
  worker_thread = &worker;
  worker_inside->Wait();
  const absl::Status status = (*runtime)->Finalize();
  PrintFact("finalize_code", absl::StatusCodeToString(status.code()));
  PrintFact("joined", !worker.joinable());
  return 0;
}

// block(): called by a daemon Python thread; waits inside AllowThreads
// until released from a __del__ during Py_FinalizeEx.
Event* const daemon_inside = new Event;
Event* const daemon_may_return = new Event;
std::atomic<bool> daemon_ended{false};

PyObject* Block(PyObject*, PyObject*) {
  GILGuard gil;  // borrows the daemon thread's attachment
  MarkOnUnwind marker{"daemon_unwound", &daemon_ended};
  {
    AllowThreads nogil;
    daemon_inside->Set();
    daemon_may_return->Wait();
  }
  PrintFact("daemon_continued", 1);
  Py_RETURN_NONE;
}
PyMethodDef block_def = {"block", Block, METH_NOARGS, nullptr};

// release_daemon(): from a __del__ during Py_FinalizeEx; lets the daemon
// thread come back and watches what becomes of it.
PyObject* ReleaseDaemon(PyObject*, PyObject*) {
  PrintFact("finalizing_when_released", compat::IsFinalizing());
  daemon_may_return->Set();
  // Where CPython parks the thread, nothing ever comes: watch a while.
  const absl::Duration watch = compat::kLateAttachHangsThread
                                   ? absl::Milliseconds(500)
                                   : absl::Seconds(10);
  PrintFact("daemon_ended_inside_finalize",
            pyscope_test::WaitFor(daemon_ended, watch));
  Py_RETURN_NONE;
}
PyMethodDef release_daemon_def = {"release_daemon", ReleaseDaemon, METH_NOARGS,
                                  nullptr};

PYSCOPE_SCENARIO(PythonThreadBackInsidePyFinalizeEx) {
  ScopedRuntime runtime(TestOptions());
  {
    GILGuard gil;
    InstallFunction(&block_def);
    InstallFunction(&release_daemon_def);
    pyscope::Exec(kAtTeardown);
    pyscope::Exec(
        "import threading\n"
        "threading.Thread(target=block, daemon=True).start()\n"
        "holder = AtTeardown(release_daemon)\n");
  }
  daemon_inside->Wait();
  PrintFact("finalize_ok", runtime.Finalize().ok());
  PrintFact("main_done", 1);
  return 0;
}

// A native thread whose GILGuard is still running Python code (CPython
// releases and re-takes the GIL inside time.sleep) when the drain deadline
// passes: its re-attachments are CPython's own, not pyscope's.
std::atomic<bool> sleeper_ended{false};

PYSCOPE_SCENARIO(NativeThreadInPythonCodePastDeadline) {
  auto runtime = ScopedRuntime::Create(TestOptions());  // 200 ms drain
  if (!runtime.ok()) return 1;
  Event inside;
  std::thread sleeper([&inside] {
    MarkOnUnwind marker{"sleeper_unwound", &sleeper_ended};
    GILGuard gil;
    inside.Set();
    pyscope::Exec("import time\nwhile True:\n    time.sleep(0.01)\n");
  });
  inside.Wait();
  const absl::Status status = (*runtime)->Finalize();
  PrintFact("finalize_code", absl::StatusCodeToString(status.code()));
  const absl::Duration watch = compat::kLateAttachHangsThread
                                   ? absl::Milliseconds(500)
                                   : absl::Seconds(10);
  PrintFact("sleeper_ended", pyscope_test::WaitFor(sleeper_ended, watch));
  // A parked thread cannot be joined; the process exits around it.
  if (sleeper_ended.load()) {
    sleeper.join();
  } else {
    sleeper.detach();
  }
  return 0;
}

TEST_SUITE("python314") {
  TEST_CASE("gh-87135: a native thread back inside Py_FinalizeEx is ended") {
    ChildResult child = RunScenario("NativeThreadBackInsidePyFinalizeEx");
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(HasFact(child, "finalize_code=DEADLINE_EXCEEDED"));
    // Released from inside Py_FinalizeEx: CPython 3.14 would park a thread
    // attaching now forever, so the join would never return.
    CHECK(HasFact(child, "finalizing_when_released=1"));
    CHECK(HasFact(child, "joined_inside_finalize=1"));
    CHECK(HasFact(child, "worker_unwound=1"));
    CHECK(!HasFact(child, "worker_continued=1"));
    CHECK(HasFact(child, "joined=1"));
    CHECK(absl::StrContains(child.err, "pyscope: ending thread"));
    CHECK(absl::StrContains(child.err, "late-native"));
    CHECK(!absl::StrContains(child.err, "terminate"));
  }

  TEST_CASE("gh-87135: a daemon Python thread back inside Py_FinalizeEx") {
    ChildResult child = RunScenario("PythonThreadBackInsidePyFinalizeEx");
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(HasFact(child, "finalizing_when_released=1"));
    CHECK(HasFact(child, "finalize_ok=1"));
    CHECK(HasFact(child, "main_done=1"));
    CHECK(!HasFact(child, "daemon_continued=1"));
    if (compat::kLateAttachHangsThread) {
      // Its own thread state re-attaches as Py_END_ALLOW_THREADS would, and
      // CPython parks the thread for good: nothing of it runs again.
      CHECK(HasFact(child, "daemon_ended_inside_finalize=0"));
      CHECK(!HasFact(child, "daemon_unwound=1"));
    } else {
      // CPython would end it with pthread_exit inside PyEval_RestoreThread,
      // past pyscope's bookkeeping; pyscope ends it first, by unwinding.
      CHECK(HasFact(child, "daemon_ended_inside_finalize=1"));
      CHECK(HasFact(child, "daemon_unwound=1"));
      CHECK(absl::StrContains(child.err, "pyscope: ending thread"));
    }
    CHECK(!absl::StrContains(child.err, "pyscope misuse"));
  }

  TEST_CASE("gh-87135: a native thread still in Python code is CPython's") {
    ChildResult child = RunScenario("NativeThreadInPythonCodePastDeadline");
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(HasFact(child, "finalize_code=DEADLINE_EXCEEDED"));
    // 3.14 parks it inside time.sleep's re-attach; before, CPython ended
    // it with pthread_exit, which unwound its C++ frames too.
    if (compat::kLateAttachHangsThread) {
      CHECK(HasFact(child, "sleeper_ended=0"));
      CHECK(!HasFact(child, "sleeper_unwound=1"));
    } else {
      CHECK(HasFact(child, "sleeper_ended=1"));
      CHECK(HasFact(child, "sleeper_unwound=1"));
    }
  }
}

// --- GH-135991: threading.Lock at finalization ------------------------------

// report(name, value): prints a fact from Python code.
PyObject* Report(PyObject*, PyObject* args) {
  const char* key = nullptr;
  PyObject* value = nullptr;
  if (!PyArg_ParseTuple(args, "sO", &key, &value)) return nullptr;
  PyObject* text = PyObject_Str(value);
  if (text == nullptr) return nullptr;
  PrintFact(key, PyUnicode_AsUTF8(text));
  Py_DECREF(text);
  Py_RETURN_NONE;
}
PyMethodDef report_def = {"report", Report, METH_VARARGS, nullptr};

PYSCOPE_SCENARIO(LockHeldByParkedThreadAtFinalization) {
  ScopedRuntime runtime(TestOptions());
  runtime.AddExitCallback([] {
    // Before Py_FinalizeEx every thread can still attach: the lock's
    // holder runs, so waiting for it is a choice, not a hang.
    GILGuard gil;
    pyscope::Exec("report('holder_alive_in_exit_callback', holder.is_alive())");
  });
  {
    GILGuard gil;
    InstallFunction(&report_def);
    pyscope::Exec(R"py(
import threading, types
lock = threading.Lock()
held = threading.Event()
# The holder's code lives in a namespace of its own: its frame, which
# outlives finalization, must not keep __main__'s globals alive.
holding = types.SimpleNamespace()
exec('''
import time
def hold(lock, held):
    with lock:
        held.set()
        while True:
            time.sleep(0.01)   # gives the GIL back and takes it again
''', holding.__dict__)
holder = threading.Thread(target=holding.hold, args=(lock, held), daemon=True)
holder.start()
held.wait()

class AcquireAtTeardown:
    def __init__(self, lock, report):
        self.lock = lock
        self.report = report
    def __del__(self):
        # Py_FinalizeEx tears __main__ down: the holder can never run again.
        try:
            self.report('acquired', int(self.lock.acquire(timeout=0.5)))
        except BaseException as error:
            self.report('raised', type(error).__name__)
teardown = AcquireAtTeardown(lock, report)
)py");
  }
  PrintFact("finalize_ok", runtime.Finalize().ok());
  return 0;
}

TEST_SUITE("python314") {
  TEST_CASE("GH-135991: a lock whose holder can never run at finalization") {
    ChildResult child = RunScenario("LockHeldByParkedThreadAtFinalization");
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(HasFact(child, "holder_alive_in_exit_callback=True"));
    CHECK(HasFact(child, "finalize_ok=1"));
    if (compat::kLockAcquireRaisesAtFinalization) {
      CHECK(HasFact(child, "raised=PythonFinalizationError"));
    } else {
      // 3.14.7 and earlier: the wait runs to its timeout (without one it
      // would never return, and Py_FinalizeEx with it).
      CHECK(HasFact(child, "acquired=0"));
    }
  }
}

// --- PyThreadState_GetUnchecked ---------------------------------------------

TEST_SUITE("python314") {
  TEST_CASE("the unchecked current thread state: attached, or null") {
    // compat::CurrentThreadStateUnchecked uses PyThreadState_GetUnchecked
    // where it exists (3.13+); the deprecated _PyThreadState_UncheckedGet
    // would fail the -Werror header checks on 3.14.
    ScopedRuntime runtime(TestOptions());
    CHECK(compat::CurrentThreadStateUnchecked() == nullptr);
    PyThreadState* attached = nullptr;
    {
      GILGuard gil;
      attached = PyThreadState_Get();
      CHECK(compat::CurrentThreadStateUnchecked() == attached);
      {
        AllowThreads nogil;
        CHECK(compat::CurrentThreadStateUnchecked() == nullptr);
      }
      CHECK(compat::CurrentThreadStateUnchecked() == attached);
    }
    CHECK(compat::CurrentThreadStateUnchecked() == nullptr);
  }
}

// --- PEP 741: the configuration read back by name ---------------------------

// The option `name` of the running configuration, or -1 where this CPython
// cannot say (before 3.14).
int ConfigInt(const char* name) PYSCOPE_REQUIRES_GIL {
  int value = -1;
  return compat::GetConfigInt(name, &value) ? value : -1;
}

TEST_SUITE("python314") {
  TEST_CASE("PEP 741: PyConfig_Get sees the options pyscope applied") {
    auto expect = [](const char* name, int value) PYSCOPE_REQUIRES_GIL {
      INFO("option " << name);
      CHECK(ConfigInt(name) == (compat::kHasConfigGet ? value : -1));
    };
    SUBCASE("Isolated()") {
      RuntimeOptions options = TestOptions();
      options.edit_config = [](PyConfig& config) {
        config.optimization_level = 2;
        return absl::OkStatus();
      };
      ScopedRuntime runtime(options);
      GILGuard gil;
      expect("use_environment", 0);
      expect("user_site_directory", 0);
      expect("install_signal_handlers", 0);
      expect("parse_argv", 0);
      expect("site_import", 1);
      expect("write_bytecode", 1);
      expect("optimization_level", 2);
      if (compat::kPythonMinor >= 11) expect("safe_path", 1);
      CHECK(ConfigInt("no_such_option") == -1);
      CHECK(PyErr_Occurred() == nullptr);
    }
    SUBCASE("Python() with site and bytecode off") {
      RuntimeOptions options = RuntimeOptions::Python();
      options.import_site = false;
      options.write_bytecode = false;
      ScopedRuntime runtime(options);
      GILGuard gil;
      expect("use_environment", 1);
      expect("install_signal_handlers", 1);
      expect("parse_argv", 0);
      expect("site_import", 0);
      expect("write_bytecode", 0);
      if (compat::kPythonMinor >= 11) expect("safe_path", 0);
    }
  }
}

// --- PEP 734: concurrent.interpreters next to SubInterpreters ---------------

// Python code of the main interpreter and of pyscope's sub-interpreters
// creating interpreters with concurrent.interpreters, used from several
// native threads while pyscope's SubInterpreters run, and what Python code
// may do with pyscope's interpreters.
PYSCOPE_SCENARIO(ConcurrentInterpretersAlongside) {
  ScopedRuntime runtime(TestOptions());
  SubInterpreter sub;
  {
    GILGuard gil;
    pyscope::Exec(absl::StrCat(R"py(
from concurrent import interpreters
a = interpreters.create()
a.exec('x = 6 * 7')
# One per native thread: an interpreter runs one __main__ at a time.
workers = [interpreters.create() for _ in range(2)]
seen = {i.id: i.whence for i in interpreters.list_all()}
pyscope_whence = seen.get()py",
                               sub.id(), R"py()
try:
    interpreters.Interpreter()py",
                               sub.id(), R"py().close()
    close_refused = False
except interpreters.InterpreterError:
    close_refused = True
)py"));
    PrintFact("pyscope_whence", EvalString("pyscope_whence"));
    PrintFact("close_refused", EvalBool("close_refused"));
  }
  PrintFact("sub_alive_after_close", sub.alive());
  PrintFact("sub_usable", sub.TryExec("y = 1").ok());
  // Native threads run code in `a` through Python, in the main interpreter,
  // while others use the SubInterpreter.
  std::atomic<int> ran{0};
  std::thread threads[4];
  for (int i = 0; i < 4; ++i) {
    threads[i] = std::thread([&, i] {
      for (int round = 0; round < 20; ++round) {
        if (i % 2 == 0) {
          GILGuard gil;
          const std::string call =
              absl::StrCat("workers[", i / 2, "].call(pow, 2, 10)");
          if (EvalLong(call) == 1024) ++ran;
        } else {
          if (sub.TryExec("z = 2 ** 10").ok()) ++ran;
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  PrintFact("ran", ran.load());
  // Interpreters created by Python code inside pyscope's sub-interpreters,
  // kept only there: ending the sub-interpreter ends them too.
  long before_end = 0;
  long after_end = 0;
  for (const auto& entry : pyscope_test::CreatableOptions()) {
    SubInterpreter owner(entry.second);
    absl::Status made = owner.TryExec(R"py(
from concurrent import interpreters
inner = interpreters.create()
inner.exec('v = 1')
inner_value = inner.call(abs, -5)
)py");
    PrintFact(absl::StrCat("made_in_", entry.first).c_str(),
              made.ok() ? std::string("OK") : made.ToString());
    {
      GILGuard gil;
      before_end = EvalLong("len(interpreters.list_all())");
    }
    PrintFact(absl::StrCat("end_", entry.first).c_str(),
              owner.End().ToString());
    GILGuard gil;
    after_end = EvalLong("len(interpreters.list_all())");
    PrintFact(absl::StrCat("ended_with_owner_", entry.first).c_str(),
              before_end - after_end);
  }
  {
    GILGuard gil;
    pyscope::Exec("a.close()\nfor w in workers:\n    w.close()");
  }
  PrintFact("finalize", runtime.Finalize().ToString());
  return 0;
}

// Finalization with interpreters of both kinds still open: pyscope ends its
// own (step 3); Py_FinalizeEx ends the ones Python code created, after the
// exit callbacks and atexit (with CPython's RuntimeWarning), unless an exit
// callback closes them first.
PYSCOPE_SCENARIO(FinalizeWithBothKindsOpen) {
  const bool close_in_callback =
      std::getenv("CLOSE_IN_EXIT_CALLBACK") != nullptr;
  ScopedRuntime runtime(TestOptions());
  SubInterpreter kept_default;
  std::unique_ptr<SubInterpreter> kept_isolated;
  if (compat::kHasPerInterpreterGil) {
    kept_isolated =
        std::make_unique<SubInterpreter>(SubInterpreterOptions::Isolated());
  }
  {
    GILGuard gil;
    pyscope::Exec(R"py(
from concurrent import interpreters
left_open = [interpreters.create() for _ in range(2)]
left_open[0].exec('import threading')
)py");
  }
  runtime.AddExitCallback([close_in_callback] {
    GILGuard gil;
    PrintFact("open_in_exit_callback",
              EvalLong("len(interpreters.list_all()) - 1"));
    if (close_in_callback) {
      pyscope::Exec(
          "for i in interpreters.list_all():\n"
          "    if i.whence == '_interpreters module':\n"
          "        i.close()\n");
    }
  });
  const absl::Status status = runtime.Finalize();
  PrintFact("finalize", status.ToString());
  PrintFact("pyscope_subs_alive",
            kept_default.alive() || (kept_isolated && kept_isolated->alive()));
  return 0;
}

// --- The free-threaded build: modules declare that they need no GIL ------

int ExecNothing(PyObject*) { return 0; }
PyModuleDef_Slot declared_slots[] = {
    {Py_mod_exec, reinterpret_cast<void*>(&ExecNothing)},
    compat::GilNotUsedSlot(),
    {0, nullptr}};
PyModuleDef declared_def = {PyModuleDef_HEAD_INIT,
                            "pyscope_declared",
                            nullptr,
                            0,
                            nullptr,
                            declared_slots,
                            nullptr,
                            nullptr,
                            nullptr};
PyModuleDef_Slot undeclared_slots[] = {
    {Py_mod_exec, reinterpret_cast<void*>(&ExecNothing)}, {0, nullptr}};
PyModuleDef undeclared_def = {PyModuleDef_HEAD_INIT,
                              "pyscope_undeclared",
                              nullptr,
                              0,
                              nullptr,
                              undeclared_slots,
                              nullptr,
                              nullptr,
                              nullptr};

// Imports a module that declares Py_mod_gil = Py_MOD_GIL_NOT_USED, then one
// that does not, and prints whether the GIL is on after each (always on
// where the build has one).
PYSCOPE_SCENARIO(ModulesAndTheGil) {
  RuntimeOptions options = TestOptions();
  options.builtin_modules = {
      pyscope::BuiltinModule::FromDefinition("pyscope_declared", &declared_def),
      pyscope::BuiltinModule::FromDefinition("pyscope_undeclared",
                                             &undeclared_def)};
  ScopedRuntime runtime(options);
  GILGuard gil;
  const char* gil_enabled = "getattr(sys, '_is_gil_enabled', lambda: True)()";
  pyscope::Exec("import sys");
  PrintFact("at_start", EvalBool(gil_enabled));
  pyscope::Exec("import pyscope_declared");
  PrintFact("after_declared", EvalBool(gil_enabled));
  pyscope::Exec("import pyscope_undeclared");
  PrintFact("after_undeclared", EvalBool(gil_enabled));
  return 0;
}

TEST_SUITE("python314") {
  TEST_CASE("PEP 734: concurrent.interpreters next to SubInterpreters") {
    if (!compat::kHasConcurrentInterpreters) {
      MESSAGE("concurrent.interpreters is new in 3.14");
      return;
    }
    ChildResult child = RunScenario("ConcurrentInterpretersAlongside");
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    // Python code sees pyscope's interpreters but cannot close them.
    CHECK(HasFact(child, "pyscope_whence=C-API"));
    CHECK(HasFact(child, "close_refused=1"));
    CHECK(HasFact(child, "sub_alive_after_close=1"));
    CHECK(HasFact(child, "sub_usable=1"));
    CHECK(HasFact(child, "ran=80"));
    for (const auto& entry : pyscope_test::CreatableOptions()) {
      INFO("options " << entry.first);
      CHECK(HasFact(child, absl::StrCat("made_in_", entry.first, "=OK")));
      CHECK(HasFact(child, absl::StrCat("end_", entry.first, "=OK")));
      // The sub-interpreter and the one its Python code created.
      CHECK(
          HasFact(child, absl::StrCat("ended_with_owner_", entry.first, "=2")));
    }
    CHECK(HasFact(child, "finalize=OK"));
    CHECK(child.err.empty());
  }

  TEST_CASE("free-threaded: a module without Py_mod_gil turns the GIL on") {
    ChildResult child = RunScenario("ModulesAndTheGil");
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    const std::string off = compat::kFreeThreaded ? "0" : "1";
    CHECK(HasFact(child, "at_start=" + off));
    CHECK(HasFact(child, "after_declared=" + off));
    CHECK(HasFact(child, "after_undeclared=1"));
    CHECK(absl::StrContains(child.err,
                            "has been enabled to load module "
                            "'pyscope_undeclared'") == compat::kFreeThreaded);
    CHECK(!absl::StrContains(child.err, "pyscope_declared"));
  }

  TEST_CASE("PEP 734: finalization with interpreters of both kinds open") {
    if (!compat::kHasConcurrentInterpreters) {
      MESSAGE("concurrent.interpreters is new in 3.14");
      return;
    }
    SUBCASE("left to Py_FinalizeEx") {
      ChildResult child = RunScenario("FinalizeWithBothKindsOpen");
      INFO(child.Describe());
      REQUIRE(child.ExitedWith(0));
      // pyscope's own were ended in step 3, before the exit callbacks.
      CHECK(HasFact(child, "open_in_exit_callback=2"));
      CHECK(HasFact(child, "finalize=OK"));
      CHECK(HasFact(child, "pyscope_subs_alive=0"));
      CHECK(absl::StrContains(child.err, "remaining subinterpreters"));
    }
    SUBCASE("closed by an exit callback") {
      ChildResult child =
          RunScenario("FinalizeWithBothKindsOpen", absl::Seconds(20),
                      {"CLOSE_IN_EXIT_CALLBACK=1"});
      INFO(child.Describe());
      REQUIRE(child.ExitedWith(0));
      CHECK(HasFact(child, "open_in_exit_callback=2"));
      CHECK(HasFact(child, "finalize=OK"));
      CHECK(HasFact(child, "pyscope_subs_alive=0"));
      CHECK(child.err.empty());
    }
  }
}

}  // namespace
