// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Shutdown under load. K native threads call Python in loops -- plainly
// through GILGuard, inside AllowThreads, inside sub-interpreters (one with
// its own GIL on 3.12+), through a ctypes callback into host code that
// opens its own guard -- while Python daemon threads and a
// ThreadPoolExecutor run, and the main thread finalizes. Each run is a
// child process with a timeout and asserts: exit 0; completed + refused =
// attempted for every thread; every refusal has a documented status code;
// no thread was ended in the middle of a callback; Finalize() is OK.
//
// The same scenario through the raw C API (PyGILState_*, Py_BEGIN/END_
// ALLOW_THREADS, hand-made sub-interpreter thread states, Py_EndInterpreter
// and Py_FinalizeEx while the threads run) is the reference: its outcomes
// (clean, threads killed, abort, crash, hang) are measured, not asserted.
//
// Knobs: PYSCOPE_SHUTDOWN_RUNS (pyscope runs, default 50),
// PYSCOPE_SHUTDOWN_RAW_RUNS (raw runs, default 4), PYSCOPE_SHUTDOWN_THREADS
// (K, default 16, a multiple of 4).

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <memory>
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

enum class Kind { kPlain, kAllowThreads, kSubInterpreter, kCtypes };
const char* const kKindNames[] = {"plain", "allow_threads", "sub_interpreter",
                                  "ctypes"};

struct Counters {
  std::atomic<long> attempted{0};
  std::atomic<long> completed{0};
  std::atomic<long> refused{0};
  std::atomic<long> bad_refusals{0};  // a status code not documented
  std::atomic<bool> in_callback{false};
  std::atomic<bool> finished{false};
};

// The Python side, run in the main interpreter before the threads start:
// daemon threads, a ThreadPoolExecutor whose tasks resubmit themselves,
// and `via_ctypes`, which calls host code through a ctypes function
// pointer (ctypes releases the GIL around the call).
constexpr char kPythonLoad[] = R"py(
import ctypes, threading, time
from concurrent.futures import ThreadPoolExecutor
def _spin():
    while True:
        sum(range(50))
        time.sleep(0.0005)
for _ in range(2):
    threading.Thread(target=_spin, daemon=True).start()
pool = ThreadPoolExecutor(2)
def _chain():
    sum(range(50))
    time.sleep(0.0005)
    try:
        pool.submit(_chain)
    except RuntimeError:   # the interpreter is shutting down
        pass
for _ in range(4):
    pool.submit(_chain)
_host = ctypes.CFUNCTYPE(ctypes.c_long, ctypes.c_long)(HOST_ADDRESS)
def via_ctypes(n):
    return _host(n)
)py";

// How long the main thread lets the load run before finalizing: spread
// over runs so that finalization meets every phase of the loops.
absl::Duration LoadTime() {
  const long run = Knob("PYSCOPE_RUN_INDEX", 0);
  return absl::Milliseconds(30 + (run * 37) % 170);
}

// --- pyscope ---

std::atomic<long> inner_refusals{0};
std::atomic<long> inner_bad{0};

bool Documented(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable ||
         status.code() == absl::StatusCode::kFailedPrecondition;
}

// The host code a ctypes callback reaches with the GIL released by ctypes:
// it opens its own guard (under a release pyscope did not make).
extern "C" long HostFunction(long n) {
  GILGuard gil(std::nothrow);
  if (!gil.ok()) {
    inner_refusals.fetch_add(1);
    if (!Documented(gil.status())) inner_bad.fetch_add(1);
    return -1;
  }
  PyObject* value = PyLong_FromLong(n + 1);
  const long result = PyLong_AsLong(value);
  Py_DECREF(value);
  return result;
}

void Work(const char* code) PYSCOPE_REQUIRES_GIL {
  if (PyRun_SimpleString(code) != 0) std::abort();
}

void Refused(Counters& c, const absl::Status& status) {
  c.refused.fetch_add(1);
  if (status.code() != absl::StatusCode::kUnavailable &&
      status.code() != absl::StatusCode::kFailedPrecondition) {
    c.bad_refusals.fetch_add(1);
  }
}

// One iteration; false once refused (the thread stops).
bool Iterate(Kind kind, Counters& c, SubInterpreter* sub, long i) {
  c.attempted.fetch_add(1);
  if (kind == Kind::kSubInterpreter) {
    GILGuard gil(*sub, std::nothrow);
    if (!gil.ok()) {
      Refused(c, gil.status());
      return false;
    }
    c.in_callback = true;
    Work("_n = sum(range(100))");
    c.in_callback = false;
    c.completed.fetch_add(1);
    return true;
  }
  GILGuard gil(std::nothrow);
  if (!gil.ok()) {
    Refused(c, gil.status());
    return false;
  }
  c.in_callback = true;
  switch (kind) {
    case Kind::kPlain:
      Work("_n = sum(range(100))");
      break;
    case Kind::kAllowThreads: {
      Work("_n = sum(range(50))");
      AllowThreads nogil;
      absl::SleepFor(absl::Microseconds(100));
      GILGuard again(std::nothrow);
      if (again.ok()) Work("_n = sum(range(50))");
      break;
    }
    case Kind::kCtypes: {
      PyObject* result = pyscope::Eval(absl::StrCat("via_ctypes(", i, ")"));
      Py_DECREF(result);
      break;
    }
    case Kind::kSubInterpreter:
      break;
  }
  c.in_callback = false;
  c.completed.fetch_add(1);
  return true;
}

PYSCOPE_SCENARIO(ShutdownUnderLoad) {
  const int k = static_cast<int>(Knob("PYSCOPE_SHUTDOWN_THREADS", 16));
  pyscope::RuntimeOptions options = pyscope::RuntimeOptions::Isolated();
  options.drain_deadline = absl::Seconds(10);
  ScopedRuntime runtime(options);
  {
    GILGuard gil;
    pyscope::Exec(absl::StrCat(
        "HOST_ADDRESS = ", reinterpret_cast<uintptr_t>(&HostFunction), "\n",
        kPythonLoad));
  }
  std::vector<std::unique_ptr<SubInterpreter>> subs;
  for (const auto& [name, opts] : pyscope_test::CreatableOptions()) {
    subs.push_back(std::make_unique<SubInterpreter>(opts));
  }
  std::vector<Counters> counters(k);
  std::vector<std::thread> threads;
  for (int t = 0; t < k; ++t) {
    const Kind kind = static_cast<Kind>(t % 4);
    SubInterpreter* sub = subs[t % subs.size()].get();
    threads.emplace_back([kind, sub, &c = counters[t]] {
      for (long i = 0; Iterate(kind, c, sub, i); ++i) {
      }
      c.finished = true;
    });
  }
  absl::SleepFor(LoadTime());
  const absl::Status finalized = runtime.Finalize();
  for (std::thread& t : threads) t.join();
  long attempted = 0, completed = 0, refused = 0, bad = 0, unbalanced = 0,
       unfinished = 0, in_callback = 0;
  for (int t = 0; t < k; ++t) {
    const Counters& c = counters[t];
    attempted += c.attempted;
    completed += c.completed;
    refused += c.refused;
    bad += c.bad_refusals;
    if (c.completed + c.refused != c.attempted) ++unbalanced;
    if (!c.finished) ++unfinished;
    if (c.in_callback) ++in_callback;
    PrintFact(absl::StrCat("thread", t, "_", kKindNames[t % 4]).c_str(),
              absl::StrCat(c.attempted.load(), "/", c.completed.load(), "/",
                           c.refused.load()));
  }
  PrintFact("finalize", finalized.ok() ? std::string("OK")
                                       : std::string(finalized.ToString()));
  PrintFact("attempted", attempted);
  PrintFact("completed", completed);
  PrintFact("refused", refused);
  PrintFact("bad_refusals", bad + inner_bad.load());
  PrintFact("inner_refusals", inner_refusals.load());
  PrintFact("unbalanced_threads", unbalanced);
  PrintFact("unfinished_threads", unfinished);
  PrintFact("ended_in_callback", in_callback);
  return 0;
}

// --- The raw C API reference ---

std::atomic<bool> raw_stop{false};

extern "C" long RawHostFunction(long n) {
  PyGILState_STATE state = PyGILState_Ensure();
  PyObject* value = PyLong_FromLong(n + 1);
  const long result = PyLong_AsLong(value);
  Py_DECREF(value);
  PyGILState_Release(state);
  return result;
}

void RawIterate(Kind kind, Counters& c, PyThreadState* sub_tstate,
                long i) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  c.attempted.fetch_add(1);
  c.in_callback = true;
  if (kind == Kind::kSubInterpreter) {
    PyEval_RestoreThread(sub_tstate);
    PyRun_SimpleString("_n = sum(range(100))");
    PyEval_SaveThread();
  } else {
    PyGILState_STATE state = PyGILState_Ensure();
    if (kind == Kind::kPlain) {
      PyRun_SimpleString("_n = sum(range(100))");
    } else if (kind == Kind::kAllowThreads) {
      PyRun_SimpleString("_n = sum(range(50))");
      Py_BEGIN_ALLOW_THREADS
        absl::SleepFor(absl::Microseconds(100));
      Py_END_ALLOW_THREADS
      PyRun_SimpleString("_n = sum(range(50))");
    } else {
      PyRun_SimpleString(absl::StrCat("via_ctypes(", i, ")").c_str());
    }
    PyGILState_Release(state);
  }
  c.in_callback = false;
  c.completed.fetch_add(1);
}

PYSCOPE_SCENARIO(ShutdownUnderLoadRaw) ABSL_NO_THREAD_SAFETY_ANALYSIS {
  const int k = static_cast<int>(Knob("PYSCOPE_SHUTDOWN_THREADS", 16));
  PyConfig config;
  PyConfig_InitIsolatedConfig(&config);
  PyStatus status = Py_InitializeFromConfig(&config);
  PyConfig_Clear(&config);
  if (PyStatus_Exception(status)) return 3;
  PyThreadState* main_tstate = PyThreadState_Get();
  PyRun_SimpleString(absl::StrCat("HOST_ADDRESS = ",
                                  reinterpret_cast<uintptr_t>(&RawHostFunction),
                                  "\n", kPythonLoad)
                         .c_str());
  // The same interpreters as the pyscope run: shared GIL, and own GIL on
  // 3.12+.
  std::vector<PyInterpreterState*> subs;
  for (const auto& [name, opts] : pyscope_test::CreatableOptions()) {
    pyscope::detail::compat::InterpreterSettings settings;
    settings.use_main_obmalloc = opts.use_main_obmalloc;
    settings.allow_fork = opts.allow_fork;
    settings.allow_exec = opts.allow_exec;
    settings.allow_threads = opts.allow_threads;
    settings.allow_daemon_threads = opts.allow_daemon_threads;
    settings.check_multi_interp_extensions = opts.check_multi_interp_extensions;
    settings.own_gil = opts.gil == pyscope::SubInterpreterOptions::Gil::kOwn;
    PyThreadState* created = nullptr;
    if (PyStatus_Exception(
            pyscope::detail::compat::NewInterpreter(settings, &created))) {
      return 3;
    }
    subs.push_back(created->interp);
    PyThreadState_Swap(main_tstate);
  }
  PyEval_SaveThread();
  std::vector<Counters> counters(k);
  std::vector<std::thread> threads;
  for (int t = 0; t < k; ++t) {
    const Kind kind = static_cast<Kind>(t % 4);
    PyInterpreterState* sub = subs[t % subs.size()];
    threads.emplace_back([kind, sub, &c = counters[t]] {
      PyThreadState* mine =
          kind == Kind::kSubInterpreter ? PyThreadState_New(sub) : nullptr;
      for (long i = 0; !raw_stop.load(); ++i) RawIterate(kind, c, mine, i);
      c.finished = true;
    });
  }
  absl::SleepFor(LoadTime());
  // What a host without pyscope does: tell the threads to stop, then end
  // the sub-interpreters and finalize while they finish what they do.
  raw_stop = true;
  PyEval_RestoreThread(main_tstate);
  for (PyInterpreterState* sub : subs) {
    PyThreadState* ender = PyThreadState_New(sub);
    PyThreadState_Swap(ender);
    Py_EndInterpreter(ender);
    PyThreadState_Swap(main_tstate);
  }
  const int rc = Py_FinalizeEx();
  // Threads that never come back were ended (or block forever) inside
  // CPython: count them, then leave without joining.
  const absl::Time deadline = absl::Now() + absl::Seconds(2);
  long unfinished = 0;
  for (;;) {
    unfinished = 0;
    for (const Counters& c : counters) unfinished += c.finished ? 0 : 1;
    if (unfinished == 0 || absl::Now() > deadline) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  PrintFact("finalize_rc", static_cast<long>(rc));
  PrintFact("unfinished_threads", unfinished);
  std::fflush(stdout);
  _exit(0);
}

// --- The runs ---

struct Outcomes {
  int runs = 0, clean = 0, killed = 0, aborted = 0, crashed = 0, hung = 0,
      other = 0;
  std::string first_failure;
  std::string Fields() const {
    return absl::StrFormat(
        "runs=%d clean=%d threads_killed=%d abort=%d crash=%d hang=%d "
        "other=%d",
        runs, clean, killed, aborted, crashed, hung, other);
  }
};

void Classify(const ChildResult& child, Outcomes* o) {
  ++o->runs;
  if (child.timed_out) {
    ++o->hung;
  } else if (child.KilledBy(SIGABRT)) {
    ++o->aborted;
  } else if (child.KilledBy(SIGSEGV) || child.KilledBy(SIGBUS)) {
    ++o->crashed;
  } else if (!child.ExitedWith(0)) {
    ++o->other;
  } else if (FactOf(child, "unfinished_threads") != "0") {
    ++o->killed;
  } else {
    ++o->clean;
    return;
  }
  if (o->first_failure.empty()) o->first_failure = child.Describe();
}

ChildResult RunOne(const char* scenario, int index) {
  return pyscope_test::RunScenario(scenario, absl::Seconds(60),
                                   {absl::StrCat("PYSCOPE_RUN_INDEX=", index)});
}

TEST_SUITE("reliability") {
  TEST_CASE("shutdown under load: every run clean, counts exact") {
    const int runs = static_cast<int>(Knob("PYSCOPE_SHUTDOWN_RUNS", 50));
    Outcomes outcomes;
    long attempted = 0, completed = 0, refused = 0;
    int exact_runs = 0;
    std::vector<std::string> failures;
    pyscope_test::RunMany(
        runs, 2, [](int i) { return RunOne("ShutdownUnderLoad", i); },
        [&](int, const ChildResult& child) {
          Classify(child, &outcomes);
          const bool exact = child.ExitedWith(0) &&
                             FactOf(child, "finalize") == "OK" &&
                             FactOf(child, "bad_refusals") == "0" &&
                             FactOf(child, "unbalanced_threads") == "0" &&
                             FactOf(child, "unfinished_threads") == "0" &&
                             FactOf(child, "ended_in_callback") == "0" &&
                             std::stol("0" + FactOf(child, "attempted")) ==
                                 std::stol("0" + FactOf(child, "completed")) +
                                     std::stol("0" + FactOf(child, "refused"));
          if (exact) {
            ++exact_runs;
            attempted += std::stol(FactOf(child, "attempted"));
            completed += std::stol(FactOf(child, "completed"));
            refused += std::stol(FactOf(child, "refused"));
          } else if (failures.size() < 3) {
            failures.push_back(child.Describe());
          }
        });
    pyscope_test::Figure(
        "shutdown_pyscope",
        absl::StrFormat("threads=%d %s exact=%d attempted=%d completed=%d "
                        "refused=%d",
                        Knob("PYSCOPE_SHUTDOWN_THREADS", 16), outcomes.Fields(),
                        exact_runs, attempted, completed, refused));
    for (const std::string& failure : failures) INFO(failure);
    CHECK(exact_runs == runs);
    CHECK(outcomes.clean == runs);
    CHECK(failures.empty());
  }

  TEST_CASE("shutdown under load, raw C API reference (measured)") {
    const int runs = static_cast<int>(Knob("PYSCOPE_SHUTDOWN_RAW_RUNS", 4));
    Outcomes outcomes;
    pyscope_test::RunMany(
        runs, 2,
        [](int i) {
          return pyscope_test::RunScenario(
              "ShutdownUnderLoadRaw", absl::Seconds(20),
              {absl::StrCat("PYSCOPE_RUN_INDEX=", i)});
        },
        [&](int, const ChildResult& child) { Classify(child, &outcomes); });
    pyscope_test::Figure(
        "shutdown_raw",
        absl::StrFormat("threads=%d %s", Knob("PYSCOPE_SHUTDOWN_THREADS", 16),
                        outcomes.Fields()));
    CHECK(outcomes.runs == runs);
  }
}

}  // namespace
