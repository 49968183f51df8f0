// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// ScopedRuntime and RuntimeOptions: configuration, initialization,
// finalization, re-initialization and adoption of a host's interpreter.

#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "doctest/doctest.h"
#include "pyscope/pyscope.h"
#include "support/python_helpers.h"
#include "support/scenario.h"

namespace {

using pyscope::AllowThreads;
using pyscope::GILGuard;
using pyscope::RuntimeOptions;
using pyscope::RuntimeState;
using pyscope::ScopedRuntime;
using pyscope_test::ChildResult;
using pyscope_test::EvalBool;
using pyscope_test::EvalLong;
using pyscope_test::EvalString;
using pyscope_test::RunScenario;
using pyscope_test::TestOptions;

bool HandlerIsDefault(int signal_number) {
  struct sigaction action;
  sigaction(signal_number, nullptr, &action);
  return action.sa_handler == SIG_DFL;
}

bool HandlerIsIgnore(int signal_number) {
  struct sigaction action;
  sigaction(signal_number, nullptr, &action);
  return action.sa_handler == SIG_IGN;
}

// Prints, from Python, the settings that tell an isolated interpreter from
// one that behaves like the `python` program.
void PrintInterpreterSettings() PYSCOPE_REQUIRES_GIL {
  pyscope::Exec(R"py(
import os, signal, sys
print('isolated=%d' % sys.flags.isolated)
print('ignore_environment=%d' % sys.flags.ignore_environment)
print('no_user_site=%d' % sys.flags.no_user_site)
print('optimize=%d' % sys.flags.optimize)
print('env_path_on_sys_path=%s' % ('/nonexistent/pyscope-env-path' in sys.path))
print('cwd_on_sys_path=%s' % (os.getcwd() in sys.path or '' in sys.path))
print('argv=%r' % (sys.argv,))
handler = signal.getsignal(signal.SIGINT)
print('sigint=%s' % ('default' if handler == signal.SIG_DFL else
                     'python' if handler is signal.default_int_handler else
                     repr(handler)))
sys.stdout.flush()
)py");
}

// The environment a scenario runs with, to show which presets read it.
const std::vector<std::string> kPythonEnvironment = {
    "PYTHONOPTIMIZE=1", "PYTHONPATH=/nonexistent/pyscope-env-path"};

PYSCOPE_SCENARIO(IsolatedDefaults) {
  RuntimeOptions options;
  options.argv = {"prog", "-c", "x"};
  ScopedRuntime runtime(options);
  std::printf("c_sigint_default=%d\n", HandlerIsDefault(SIGINT));
  std::printf("c_sigpipe_default=%d\n", HandlerIsDefault(SIGPIPE));
  GILGuard gil;
  PrintInterpreterSettings();  // imports signal
  std::printf("c_sigint_default_after_import=%d\n", HandlerIsDefault(SIGINT));
  return 0;
}

void HostSigintHandler(int) {}

PYSCOPE_SCENARIO(HostSigintHandlerKept) {
  struct sigaction action = {};
  action.sa_handler = &HostSigintHandler;
  sigaction(SIGINT, &action, nullptr);
  ScopedRuntime runtime(TestOptions());
  GILGuard gil;
  pyscope::Exec("import signal");
  std::printf("python_sees=%s\n",
              EvalString("signal.getsignal(signal.SIGINT)").c_str());
  struct sigaction now;
  sigaction(SIGINT, nullptr, &now);
  std::printf("host_handler_kept=%d\n", now.sa_handler == &HostSigintHandler);
  return 0;
}

PYSCOPE_SCENARIO(PythonPreset) {
  RuntimeOptions options = RuntimeOptions::Python();
  options.argv = {"prog", "-c", "x"};
  ScopedRuntime runtime(options);
  std::printf("c_sigint_default=%d\n", HandlerIsDefault(SIGINT));
  std::printf("c_sigpipe_ignored=%d\n", HandlerIsIgnore(SIGPIPE));
  GILGuard gil;
  PrintInterpreterSettings();
  return 0;
}

TEST_SUITE("runtime") {
  TEST_CASE("the default is isolated from the environment, cwd and signals") {
    ChildResult child =
        RunScenario("IsolatedDefaults", absl::Seconds(20), kPythonEnvironment);
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(child.out.find("isolated=1\n") != std::string::npos);
    CHECK(child.out.find("ignore_environment=1\n") != std::string::npos);
    CHECK(child.out.find("no_user_site=1\n") != std::string::npos);
    // PYTHONOPTIMIZE and PYTHONPATH were set but not read.
    CHECK(child.out.find("optimize=0\n") != std::string::npos);
    CHECK(child.out.find("env_path_on_sys_path=False\n") != std::string::npos);
    CHECK(child.out.find("cwd_on_sys_path=False\n") != std::string::npos);
    // No signal handlers: Python sees SIG_DFL, and so does the C level.
    CHECK(child.out.find(pyscope::detail::compat::kSigintViewIsNone
                             ? "sigint=None\n"
                             : "sigint=default\n") != std::string::npos);
    CHECK(child.out.find("c_sigint_default=1\n") != std::string::npos);
    CHECK(child.out.find("c_sigpipe_default=1\n") != std::string::npos);
    // Importing `signal` does not install CPython's SIGINT handler either.
    CHECK(child.out.find("c_sigint_default_after_import=1\n") !=
          std::string::npos);
    // argv is sys.argv verbatim, never parsed ("-c" did not run anything).
    CHECK(child.out.find("argv=('prog', '-c', 'x')\n") == std::string::npos);
    CHECK(child.out.find("argv=['prog', '-c', 'x']\n") != std::string::npos);
  }

  TEST_CASE("a host's own SIGINT handler is left in place") {
    ChildResult child = RunScenario("HostSigintHandlerKept");
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(child.out.find("python_sees=None\n") != std::string::npos);
    CHECK(child.out.find("host_handler_kept=1\n") != std::string::npos);
  }

  TEST_CASE("the Python() preset behaves like the python program") {
    ChildResult child =
        RunScenario("PythonPreset", absl::Seconds(20), kPythonEnvironment);
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(child.out.find("isolated=0\n") != std::string::npos);
    CHECK(child.out.find("ignore_environment=0\n") != std::string::npos);
    CHECK(child.out.find("no_user_site=0\n") != std::string::npos);
    CHECK(child.out.find("optimize=1\n") != std::string::npos);
    CHECK(child.out.find("env_path_on_sys_path=True\n") != std::string::npos);
    CHECK(child.out.find("sigint=python\n") != std::string::npos);
    CHECK(child.out.find("c_sigint_default=0\n") != std::string::npos);
    CHECK(child.out.find("c_sigpipe_ignored=1\n") != std::string::npos);
    // Still never parsed.
    CHECK(child.out.find("argv=['prog', '-c', 'x']\n") != std::string::npos);
  }

  TEST_CASE("argv is sys.argv verbatim, whatever it looks like") {
    RuntimeOptions options = TestOptions();
    options.argv = {"prog", "-I", "-O", "-S", "--", "-m", "os"};
    ScopedRuntime runtime(options);
    GILGuard gil;
    pyscope::Exec("import sys");
    CHECK(EvalString("sys.argv") ==
          "['prog', '-I', '-O', '-S', '--', '-m', 'os']");
    CHECK(EvalLong("sys.flags.optimize") == 0);
    CHECK(EvalLong("sys.flags.no_site") == 0);
  }

  TEST_CASE("options are copied, never consumed") {
    const std::string dir = pyscope_test::MakeTempDir();
    int edit_calls = 0;
    RuntimeOptions options = TestOptions();
    options.program_name = "pyscope-prog";
    options.argv = {"prog", "first"};
    options.prepend_sys_path = {dir};
    options.edit_config = [&edit_calls](PyConfig&) {
      ++edit_calls;
      return absl::OkStatus();
    };
    {
      ScopedRuntime runtime(options);
      CHECK(options.argv == std::vector<std::string>{"prog", "first"});
      CHECK(options.prepend_sys_path == std::vector<std::string>{dir});
      CHECK(options.program_name == "pyscope-prog");
      CHECK(static_cast<bool>(options.edit_config));
      CHECK(runtime.options().argv == options.argv);
      // Later changes to the caller's copy do not reach the runtime.
      options.argv.push_back("second");
      CHECK(runtime.options().argv.size() == 2);
      GILGuard gil;
      pyscope::Exec("import sys");
      CHECK(EvalString("sys.argv") == "['prog', 'first']");
      CHECK(EvalString("sys.path[0]") == dir);
    }
    // The same options object starts a second runtime.
    auto again = ScopedRuntime::Create(options);
    REQUIRE(again.ok());
    {
      GILGuard gil;
      pyscope::Exec("import sys");
      CHECK(EvalString("sys.argv") == "['prog', 'first', 'second']");
    }
    CHECK(edit_calls == 2);
    CHECK((*again)->Finalize().ok());
  }

  TEST_CASE("prepend_sys_path puts directories first and importable") {
    const std::string first = pyscope_test::MakeTempDir();
    const std::string second = pyscope_test::MakeTempDir();
    pyscope_test::WriteFile(first + "/pyscope_probe_first.py", "VALUE = 17\n");
    pyscope_test::WriteFile(second + "/pyscope_probe_second.py",
                            "VALUE = 23\n");
    RuntimeOptions options = TestOptions();
    options.prepend_sys_path = {first, second};
    ScopedRuntime runtime(options);
    GILGuard gil;
    pyscope::Exec("import sys");
    CHECK(EvalString("sys.path[0]") == first);
    CHECK(EvalString("sys.path[1]") == second);
    CHECK(EvalLong("__import__('pyscope_probe_first').VALUE") == 17);
    CHECK(EvalLong("__import__('pyscope_probe_second').VALUE") == 23);
  }

  TEST_CASE("module_search_paths is exactly sys.path") {
    std::string stdlib;
    std::string dynload;
    {
      ScopedRuntime runtime(TestOptions());
      GILGuard gil;
      pyscope::Exec("import os, sys");
      stdlib = EvalString("os.path.dirname(os.__file__)");
      dynload =
          EvalString("[p for p in sys.path if p.endswith('lib-dynload')][0]");
    }
    const std::string extra = pyscope_test::MakeTempDir();
    pyscope_test::WriteFile(extra + "/pyscope_probe_exact.py", "VALUE = 5\n");
    const std::string expected =
        absl::StrCat("['", stdlib, "', '", dynload, "', '", extra, "']");

    SUBCASE("without the site module") {
      RuntimeOptions options = TestOptions();
      options.module_search_paths = {stdlib, dynload, extra};
      options.import_site = false;
      // Ignored when the path is exact.
      options.prepend_sys_path = {"/nonexistent/pyscope-prepended"};
      ScopedRuntime runtime(options);
      GILGuard gil;
      CHECK(EvalString("__import__('sys').path") == expected);
      CHECK(EvalLong("__import__('pyscope_probe_exact').VALUE") == 5);
    }
    SUBCASE("with the site module, which appends only site directories") {
      RuntimeOptions options = TestOptions();
      options.module_search_paths = {stdlib, dynload, extra};
      ScopedRuntime runtime(options);
      GILGuard gil;
      pyscope::Exec("import sys");
      CHECK(EvalString(absl::StrCat("sys.path[:3]")) == expected);
      // site-packages; Debian's own CPython uses dist-packages.
      CHECK(
          EvalBool("all(p.endswith(('site-packages', 'dist-packages')) "
                   "for p in sys.path[3:])"));
    }
  }

  TEST_CASE("edit_config edits the PyConfig before it is applied") {
    RuntimeOptions options = TestOptions();
    options.edit_config = [](PyConfig& config) {
      config.optimization_level = 2;
      PyStatus status = PyConfig_SetBytesString(&config, &config.pycache_prefix,
                                                "/nonexistent/pyscope-pycache");
      if (PyStatus_Exception(status)) {
        return absl::InternalError("PyConfig_SetBytesString failed");
      }
      return absl::OkStatus();
    };
    ScopedRuntime runtime(options);
    GILGuard gil;
    CHECK(EvalLong("__import__('sys').flags.optimize") == 2);
    CHECK(EvalString("__import__('sys').pycache_prefix") ==
          "/nonexistent/pyscope-pycache");
  }

  TEST_CASE("edit_config returning an error aborts construction with it") {
    const RuntimeState state_before = pyscope::GetRuntimeState();
    const uint64_t generation_before = pyscope::RuntimeGeneration();
    RuntimeOptions options = TestOptions();
    options.edit_config = [](PyConfig&) {
      return absl::PermissionDeniedError("host policy refuses this config");
    };

    auto created = ScopedRuntime::Create(options);
    CHECK(created.status() ==
          absl::PermissionDeniedError("host policy refuses this config"));
    try {
      ScopedRuntime runtime(options);
      FAIL("the constructor did not throw");
    } catch (const pyscope::Error& error) {
      CHECK(error.status().code() == absl::StatusCode::kPermissionDenied);
      CHECK(std::string(error.what()).find("host policy refuses") !=
            std::string::npos);
    }
    CHECK(Py_IsInitialized() == 0);
    CHECK(pyscope::GetRuntimeState() == state_before);
    CHECK(pyscope::RuntimeGeneration() == generation_before);
    // Nothing is left claimed: a runtime starts afterwards.
    ScopedRuntime runtime(TestOptions());
    CHECK(pyscope::GetRuntimeState() == RuntimeState::kRunning);
  }

  TEST_CASE("a missing home is kNotFound naming the paths tried") {
    RuntimeOptions options = TestOptions();
    options.home = "/nonexistent/pyscope-home";
    auto created = ScopedRuntime::Create(options);
    REQUIRE(!created.ok());
    CHECK(created.status().code() == absl::StatusCode::kNotFound);
    CHECK(std::string(created.status().message())
              .find(absl::StrCat("/nonexistent/pyscope-home/lib/",
                                 pyscope::detail::compat::kStdlibDirName,
                                 "/encodings/__init__.py")) !=
          std::string::npos);
    CHECK(Py_IsInitialized() == 0);
    try {
      ScopedRuntime runtime(options);
      FAIL("the constructor did not throw");
    } catch (const pyscope::Error& error) {
      CHECK(error.status().code() == absl::StatusCode::kNotFound);
    }
  }

  TEST_CASE("a module_search_paths without the stdlib is kNotFound") {
    RuntimeOptions options = TestOptions();
    options.module_search_paths = {"/nonexistent/pyscope-a",
                                   "/nonexistent/pyscope-b"};
    auto created = ScopedRuntime::Create(options);
    REQUIRE(!created.ok());
    CHECK(created.status().code() == absl::StatusCode::kNotFound);
    const std::string message(created.status().message());
    CHECK(message.find("/nonexistent/pyscope-a/encodings/__init__.py") !=
          std::string::npos);
    CHECK(message.find("/nonexistent/pyscope-b/encodings/__init__.py") !=
          std::string::npos);
    CHECK(Py_IsInitialized() == 0);
  }

  TEST_CASE("Finalize is idempotent and the destructor does not repeat it") {
    const uint64_t generation_before = pyscope::RuntimeGeneration();
    ScopedRuntime runtime(TestOptions());
    CHECK(runtime.Finalize().ok());
    CHECK(pyscope::GetRuntimeState() == RuntimeState::kFinalized);
    CHECK(pyscope::RuntimeGeneration() == generation_before + 2);
    CHECK(Py_IsInitialized() == 0);
    CHECK(runtime.Finalize().ok());
    CHECK(runtime.Finalize().ok());
    CHECK(pyscope::RuntimeGeneration() == generation_before + 2);
  }

  TEST_CASE("Finalize reports a failing Py_FinalizeEx, every time") {
    ScopedRuntime runtime(TestOptions());
    {
      GILGuard gil;
      // Py_FinalizeEx returns -1 when flushing sys.stdout fails.
      pyscope::Exec(R"py(
import sys
class _FailingStdout:
    def write(self, text):
        return len(text)
    def flush(self):
        raise OSError('pyscope test: flush refused')
sys.stdout = _FailingStdout()
)py");
    }
    const absl::Status first = runtime.Finalize();
    CHECK(first.code() == absl::StatusCode::kInternal);
    CHECK(std::string(first.message()).find("Py_FinalizeEx returned -1") !=
          std::string::npos);
    CHECK(runtime.Finalize() == first);
    CHECK(pyscope::GetRuntimeState() == RuntimeState::kFinalized);
  }

  TEST_CASE("Create returns a running runtime or a status") {
    auto created = ScopedRuntime::Create(TestOptions());
    REQUIRE(created.ok());
    ScopedRuntime& runtime = **created;
    CHECK(!runtime.adopted());
    CHECK(runtime.main_interpreter() == PyInterpreterState_Main());
    CHECK(pyscope::GetRuntimeState() == RuntimeState::kRunning);
    {
      GILGuard gil;
      CHECK(EvalLong("6 * 7") == 42);
    }
    created->reset();
    CHECK(pyscope::GetRuntimeState() == RuntimeState::kFinalized);
    CHECK(Py_IsInitialized() == 0);
  }

  TEST_CASE("exit callbacks run last-first, with Python working") {
    std::vector<int> order;
    std::vector<long> seen;
    std::vector<RuntimeState> states;
    ScopedRuntime runtime(TestOptions());
    {
      GILGuard gil;
      pyscope::Exec("value = 5");
    }
    for (int i = 1; i <= 3; ++i) {
      runtime.AddExitCallback([i, &order, &seen, &states] {
        GILGuard gil;
        order.push_back(i);
        seen.push_back(EvalLong(absl::StrCat("value * ", i)));
        states.push_back(pyscope::GetRuntimeState());
        pyscope::Exec("value += 1");
      });
    }
    CHECK(order.empty());
    CHECK(runtime.Finalize().ok());
    CHECK(order == std::vector<int>{3, 2, 1});
    CHECK(seen == std::vector<long>{15, 12, 7});
    CHECK(states == std::vector<RuntimeState>(3, RuntimeState::kFinalizing));
  }

  TEST_CASE("a throwing exit callback is reported; the others still run") {
    std::vector<int> order;
    ScopedRuntime runtime(TestOptions());
    runtime.AddExitCallback([&order] { order.push_back(1); });
    runtime.AddExitCallback(
        [] { throw std::runtime_error("exit callback failed on purpose"); });
    runtime.AddExitCallback([&order] { order.push_back(3); });
    const absl::Status status = runtime.Finalize();
    CHECK(order == std::vector<int>{3, 1});
    CHECK(status.code() == absl::StatusCode::kInternal);
    CHECK(
        std::string(status.message()).find("exit callback failed on purpose") !=
        std::string::npos);
  }

  TEST_CASE("the runtime re-initializes in one process, 25 cycles") {
    // A native thread that lives across every cycle and attaches once per
    // cycle: its cached thread state must be renewed with each generation.
    std::mutex mu;
    std::condition_variable cv;
    int requested = -1;
    int answered = -1;
    long worker_value = -1;
    bool stop = false;
    std::thread worker([&] {
      for (;;) {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return stop || requested != answered; });
        if (stop) return;
        {
          GILGuard gil;
          worker_value = EvalLong("value + 1000");
        }
        answered = requested;
        cv.notify_all();
      }
    });

    int good_cycles = 0;
    for (int cycle = 0; cycle < 25; ++cycle) {
      CAPTURE(cycle);
      const uint64_t generation = pyscope::RuntimeGeneration();
      ScopedRuntime runtime(TestOptions());
      CHECK(pyscope::GetRuntimeState() == RuntimeState::kRunning);
      CHECK(pyscope::RuntimeGeneration() == generation + 1);
      long value = -1;
      {
        GILGuard gil;
        pyscope::Exec(absl::StrCat(
            "import json, threading\nvalue = json.loads('[", cycle,
            "]')[0] * 2\n"
            "t = threading.Thread(target=lambda: None)\nt.start()\nt.join()"));
        value = EvalLong("value");
      }
      {
        std::unique_lock<std::mutex> lock(mu);
        requested = cycle;
        cv.notify_all();
        cv.wait(lock, [&] { return answered == cycle; });
      }
      CHECK(value == cycle * 2);
      CHECK(worker_value == cycle * 2 + 1000);
      const absl::Status status = runtime.Finalize();
      CHECK(status.ok());
      CHECK(Py_IsInitialized() == 0);
      CHECK(pyscope::GetRuntimeState() == RuntimeState::kFinalized);
      CHECK(pyscope::RuntimeGeneration() == generation + 2);
      if (status.ok() && value == cycle * 2 &&
          worker_value == cycle * 2 + 1000) {
        ++good_cycles;
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
      cv.notify_all();
    }
    worker.join();
    CHECK(good_cycles == 25);
  }

  TEST_CASE("a second runtime is reported and refused") {
    pyscope_test::RecordingMisuseHandler handler;
    ScopedRuntime first(TestOptions());
    const int line = __LINE__ + 1;
    auto second = ScopedRuntime::Create(TestOptions());
    CHECK(second.status().code() == absl::StatusCode::kAlreadyExists);
    const auto reports = handler.reports();
    REQUIRE(reports.size() == 1);
    CHECK(reports[0].misuse == pyscope::Misuse::kSecondRuntime);
    CHECK(std::string(reports[0].guard) == "ScopedRuntime");
    CHECK(reports[0].created_at.line() == line);
    CHECK(std::string(reports[0].created_at.file()).find("runtime_test.cc") !=
          std::string::npos);
    // The first one is untouched.
    CHECK(pyscope::GetRuntimeState() == RuntimeState::kRunning);
    GILGuard gil;
    CHECK(EvalLong("1 + 1") == 2);
  }
}

PYSCOPE_SCENARIO(GilReleasedAfterConstruction) {
  ScopedRuntime runtime(TestOptions());
  // The constructing thread holds nothing...
  std::printf(
      "current_null=%d\n",
      pyscope::detail::compat::CurrentThreadStateUnchecked() == nullptr);
  // ...so another thread attaches at once.
  std::atomic<bool> attached{false};
  const auto start = std::chrono::steady_clock::now();
  std::thread other([&attached] {
    GILGuard gil(std::nothrow);
    if (gil.ok()) {
      pyscope::Exec("answer = 42");
      attached = true;
    }
  });
  other.join();
  const auto waited = std::chrono::steady_clock::now() - start;
  std::printf("attached=%d\n", attached.load());
  std::printf("fast=%d\n", waited < std::chrono::seconds(2));
  GILGuard gil;
  std::printf("answer=%ld\n", EvalLong("answer"));
  return 0;
}

PYSCOPE_SCENARIO(StateTransitions) {
  auto print = [](const char* when) {
    std::printf("%s: state=%d generation=%llu\n", when,
                static_cast<int>(pyscope::GetRuntimeState()),
                static_cast<unsigned long long>(pyscope::RuntimeGeneration()));
  };
  print("fresh");
  RuntimeOptions bad = TestOptions();
  bad.home = "/nonexistent/pyscope-home";
  std::printf("bad_create_ok=%d\n", ScopedRuntime::Create(bad).ok());
  print("after_failed_create");
  for (int round = 0; round < 2; ++round) {
    ScopedRuntime runtime(TestOptions());
    print("running");
    runtime.AddExitCallback([&print] { print("exit_callback"); });
    std::printf("finalize_ok=%d\n", runtime.Finalize().ok());
    print("finalized");
  }
  return 0;
}

TEST_SUITE("runtime") {
  TEST_CASE("the GIL is released when construction returns") {
    ChildResult child =
        RunScenario("GilReleasedAfterConstruction", absl::Seconds(20));
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(child.out.find("current_null=1\n") != std::string::npos);
    CHECK(child.out.find("attached=1\n") != std::string::npos);
    CHECK(child.out.find("fast=1\n") != std::string::npos);
    CHECK(child.out.find("answer=42\n") != std::string::npos);
  }

  TEST_CASE("GetRuntimeState and RuntimeGeneration follow the lifecycle") {
    ChildResult child = RunScenario("StateTransitions", absl::Seconds(20));
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(child.out ==
          "fresh: state=0 generation=0\n"
          "bad_create_ok=0\n"
          "after_failed_create: state=0 generation=0\n"
          "running: state=1 generation=1\n"
          "exit_callback: state=2 generation=1\n"
          "finalize_ok=1\n"
          "finalized: state=3 generation=2\n"
          "running: state=1 generation=3\n"
          "exit_callback: state=2 generation=3\n"
          "finalize_ok=1\n"
          "finalized: state=3 generation=4\n");
  }
}

PYSCOPE_SCENARIO(AllowThreadsInExitCallback) {
  // An exit callback may release the GIL (to wait for something) and take
  // it back: the finalizing thread is not a thread to end.
  ScopedRuntime runtime(TestOptions());
  runtime.AddExitCallback([] {
    GILGuard gil;
    pyscope::Exec("before = 1");
    {
      AllowThreads nogil;
      std::printf("released=1\n");
      {
        GILGuard again;
        pyscope::Exec("inside = 2");
      }
    }
    std::printf("callback_value=%ld\n", EvalLong("before + inside"));
  });
  std::printf("finalize=%s\n", runtime.Finalize().ToString().c_str());
  return 0;
}

PYSCOPE_SCENARIO(BrokenStandardLibrary) {
  // Passes pyscope's own check (encodings/__init__.py exists) but fails
  // inside CPython's initialization.
  const std::string dir = pyscope_test::MakeTempDir();
  const std::string package = dir + "/encodings";
  std::string command = "mkdir -p " + package;
  if (std::system(command.c_str()) != 0) return 3;
  pyscope_test::WriteFile(package + "/__init__.py",
                          "raise ImportError('pyscope test: broken stdlib')\n");
  RuntimeOptions options = TestOptions();
  options.module_search_paths = {dir};
  auto created = ScopedRuntime::Create(options);
  std::printf("ok=%d\n", created.ok());
  std::printf("code=%s\n",
              absl::StatusCodeToString(created.status().code()).c_str());
  std::printf("message=%s\n", std::string(created.status().message()).c_str());
  std::printf("still_running=1\n");
  return 0;
}

PYSCOPE_SCENARIO(AdoptHostRuntime) {
  auto not_yet = ScopedRuntime::Adopt();
  std::printf("adopt_uninitialized=%s\n",
              absl::StatusCodeToString(not_yet.status().code()).c_str());

  Py_InitializeEx(0);  // The host starts Python itself and holds the GIL.
  auto own = ScopedRuntime::Create(TestOptions());
  std::printf("create_over_host=%s\n",
              absl::StatusCodeToString(own.status().code()).c_str());
  auto adopted = ScopedRuntime::Adopt(TestOptions());
  std::printf("adopt=%d\n", adopted.ok());
  if (!adopted.ok()) return 1;
  ScopedRuntime& runtime = **adopted;
  std::printf("adopted=%d state=%d\n", runtime.adopted(),
              static_cast<int>(pyscope::GetRuntimeState()));
  PyInterpreterState* interp = PyInterpreterState_Main();
  PyThreadState* host = PyThreadState_Get();
  {
    GILGuard gil;  // borrows the host's attachment
    std::printf("borrowed_host_tstate=%d\n", PyThreadState_Get() == host);
    pyscope::Exec("x = 40");
  }
  std::printf("host_still_attached=%d\n", pyscope_test::IsCurrent(host));
  PyThreadState* saved = PyEval_SaveThread();

  // A native thread attaches through pyscope and stays alive (outside any
  // guard) across the adopted runtime's finalization.
  std::mutex mu;
  std::condition_variable cv;
  int stage = 0;
  std::thread worker([&] {
    {
      GILGuard gil;
      pyscope::Exec("x += 1");
    }
    std::unique_lock<std::mutex> lock(mu);
    stage = 1;
    cv.notify_all();
    cv.wait(lock, [&] { return stage == 2; });
    // After pyscope let go, the host's own C API still works on this
    // thread: its PyGILState thread state is the one pyscope created.
    PyGILState_STATE state = PyGILState_Ensure();
    const bool same = PyThreadState_Get() == PyGILState_GetThisThreadState();
    PyRun_SimpleString("x += 100");
    PyGILState_Release(state);
    std::printf("worker_gilstate_after_finalize=%d\n", same);
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return stage == 1; });
  }
  {
    GILGuard gil;
    std::printf("thread_states_with_worker=%d\n",
                pyscope_test::CountThreadStates(interp));
  }
  runtime.AddExitCallback([] {
    GILGuard gil;
    std::printf("exit_callback_x=%ld\n", EvalLong("x"));
  });
  const absl::Status status = runtime.Finalize();
  std::printf("finalize=%s\n", status.ToString().c_str());
  std::printf("state=%d initialized=%d\n",
              static_cast<int>(pyscope::GetRuntimeState()), Py_IsInitialized());
  {
    GILGuard refused(std::nothrow);
    std::printf("guard_after=%s\n",
                absl::StatusCodeToString(refused.status().code()).c_str());
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    stage = 2;
    cv.notify_all();
  }
  worker.join();

  // The host takes its interpreter back; the worker's thread state stayed
  // valid (its PyGILState_Ensure above worked) and is the host's to free.
  PyEval_RestoreThread(saved);
  std::printf("thread_states_after=%d\n",
              pyscope_test::CountThreadStates(interp));
  PyRun_SimpleString("x += 1\nprint('host_x=%d' % x, flush=True)");
  std::printf("host_finalize=%d\n", Py_FinalizeEx());
  return 0;
}

TEST_SUITE("runtime") {
  TEST_CASE("an exit callback may release and re-take the GIL") {
    ChildResult child = RunScenario("AllowThreadsInExitCallback");
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(child.out ==
          "released=1\n"
          "callback_value=3\n"
          "finalize=OK\n");
  }

  TEST_CASE("a stdlib that fails inside CPython is a status, not an exit") {
    ChildResult child = RunScenario("BrokenStandardLibrary", absl::Seconds(20));
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(child.out.find("ok=0\n") != std::string::npos);
    CHECK(child.out.find("code=OK\n") == std::string::npos);
    CHECK(child.out.find("still_running=1\n") != std::string::npos);
  }

  TEST_CASE("Adopt uses an interpreter the host started") {
    ChildResult child = RunScenario("AdoptHostRuntime", absl::Seconds(20));
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(child.out.find("adopt_uninitialized=FAILED_PRECONDITION\n") !=
          std::string::npos);
    CHECK(child.out.find("create_over_host=ALREADY_EXISTS\n") !=
          std::string::npos);
    CHECK(child.out.find("adopt=1\n") != std::string::npos);
    CHECK(child.out.find("adopted=1 state=1\n") != std::string::npos);
    CHECK(child.out.find("borrowed_host_tstate=1\n") != std::string::npos);
    CHECK(child.out.find("host_still_attached=1\n") != std::string::npos);
    CHECK(child.out.find("thread_states_with_worker=2\n") != std::string::npos);
    CHECK(child.out.find("exit_callback_x=41\n") != std::string::npos);
    CHECK(child.out.find("finalize=OK\n") != std::string::npos);
    // Finalizing an adopted runtime leaves Python to the host.
    CHECK(child.out.find("state=3 initialized=1\n") != std::string::npos);
    CHECK(child.out.find("guard_after=UNAVAILABLE\n") != std::string::npos);
    CHECK(child.out.find("worker_gilstate_after_finalize=1\n") !=
          std::string::npos);
    // The worker's state stays until the host finalizes (pyscope forgot it;
    // deleting another thread's PyGILState state is unsafe).
    CHECK(child.out.find("thread_states_after=2\n") != std::string::npos);
    CHECK(child.out.find("host_x=142\n") != std::string::npos);
    CHECK(child.out.find("host_finalize=0\n") != std::string::npos);
  }
}

// PyErr_SetInterrupt() from a native thread without a thread state, with
// the default options (no Python signal handlers): never a crash.
PYSCOPE_SCENARIO(SetInterruptWithoutHandlers) {
  ScopedRuntime runtime(TestOptions());
  std::atomic<bool> running{false};
  std::thread interrupter([&] {
    while (!running.load()) std::this_thread::yield();
    for (int i = 0; i < 5; ++i) {
      PyErr_SetInterrupt();
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });
  {
    GILGuard gil;
    pyscope::Exec("import signal, time");
    running.store(true);
    const absl::Status ran = pyscope::TryExec(
        "deadline = time.monotonic() + 0.1\n"
        "while time.monotonic() < deadline:\n"
        "    time.sleep(0.005)\n");
    std::printf("ran=%s\n",
                ran.ok() ? "OK" : std::string(ran.message()).c_str());
  }
  interrupter.join();
  std::printf("finalize=%s\n", runtime.Finalize().ToString().c_str());
  return 0;
}

// A runtime that read PYTHONPATH leaves nothing of it to an isolated runtime
// started after it (CPython 3.9 and 3.10 keep the path configuration).
PYSCOPE_SCENARIO(IsolationAfterPythonPreset) {
  {
    ScopedRuntime python(RuntimeOptions::Python());
    GILGuard gil;
    std::printf(
        "python_sees=%d\n",
        EvalBool("'/nonexistent/pyscope-env-path' in __import__('sys').path"));
  }
  ScopedRuntime isolated(TestOptions());
  GILGuard gil;
  std::printf(
      "isolated_sees=%d\n",
      EvalBool("'/nonexistent/pyscope-env-path' in __import__('sys').path"));
  return 0;
}

TEST_SUITE("runtime") {
  TEST_CASE("PyErr_SetInterrupt from a native thread does not crash") {
    ChildResult child = RunScenario("SetInterruptWithoutHandlers");
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    // Python's SIGINT handler is not installed: the interrupt is dropped.
    CHECK(child.out.find("ran=OK\n") != std::string::npos);
    CHECK(child.out.find("finalize=OK\n") != std::string::npos);
  }

  TEST_CASE("isolation holds after a runtime that read the environment") {
    ChildResult child =
        RunScenario("IsolationAfterPythonPreset", absl::Seconds(20),
                    {"PYTHONPATH=/nonexistent/pyscope-env-path"});
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(child.out.find("python_sees=1\n") != std::string::npos);
    CHECK(child.out.find("isolated_sees=0\n") != std::string::npos);
  }
}

}  // namespace
