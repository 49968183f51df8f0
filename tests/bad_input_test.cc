// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Bad input to RuntimeOptions and SubInterpreterOptions: every field with
// invalid values returns a status a user can act on (what was wrong, which
// value, what was tried), the process stays usable, and a valid runtime
// starts afterwards. A failure that leaves CPython unable to start again is
// refused by pyscope from then on, instead of by CPython.

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "doctest/doctest.h"
#include "pyscope/pyscope.h"
#include "support/python_helpers.h"
#include "support/scenario.h"

namespace {

using pyscope::GILGuard;
using pyscope::RuntimeOptions;
using pyscope::ScopedRuntime;
using pyscope::SubInterpreterOptions;
using pyscope_test::ChildResult;
using pyscope_test::EvalString;
using pyscope_test::HasFact;
using pyscope_test::PrintFact;
using pyscope_test::RunScenario;
using pyscope_test::TestOptions;

struct BadRuntimeOptions {
  const char* what;
  std::function<void(RuntimeOptions&)> spoil;
  absl::StatusCode code;
  std::vector<std::string> message_has;
};

const char kNul[] = "a\0b";
std::string WithNul() { return std::string(kNul, sizeof(kNul) - 1); }
const std::string kNotUtf8 = "caf\xc3";         // truncated sequence
const std::string kSurrogate = "\xed\xa0\x80";  // U+D800, not allowed

std::vector<BadRuntimeOptions> Cases() {
  const auto invalid = absl::StatusCode::kInvalidArgument;
  const auto not_found = absl::StatusCode::kNotFound;
  const auto internal = absl::StatusCode::kInternal;
  return {
      {"an unknown preset",
       [](RuntimeOptions& o) {
         o.preset = static_cast<RuntimeOptions::Preset>(7);
       },
       invalid,
       {"preset", "invalid value 7"}},
      {"a NUL byte in program_name",
       [](RuntimeOptions& o) { o.program_name = WithNul(); },
       invalid,
       {"program_name", "NUL byte at offset 1"}},
      {"a NUL byte in home",
       [](RuntimeOptions& o) { o.home = WithNul(); },
       invalid,
       {"RuntimeOptions::home", "NUL byte"}},
      {"a NUL byte in argv",
       [](RuntimeOptions& o) {
         o.argv = {"prog", WithNul()};
       },
       invalid,
       {"argv[1]", "NUL byte"}},
      {"a NUL byte in module_search_paths",
       [](RuntimeOptions& o) { o.module_search_paths = {WithNul()}; },
       invalid,
       {"module_search_paths[0]", "NUL byte"}},
      {"a NUL byte in prepend_sys_path",
       [](RuntimeOptions& o) {
         o.prepend_sys_path = {"/tmp", WithNul()};
       },
       invalid,
       {"prepend_sys_path[1]", "NUL byte"}},
      {"invalid UTF-8 in program_name",
       [](RuntimeOptions& o) { o.program_name = kNotUtf8; },
       invalid,
       {"program_name", "not valid UTF-8"}},
      {"invalid UTF-8 in home",
       [](RuntimeOptions& o) { o.home = kSurrogate; },
       invalid,
       {"RuntimeOptions::home", "not valid UTF-8"}},
      {"invalid UTF-8 in argv",
       [](RuntimeOptions& o) { o.argv = {kNotUtf8}; },
       invalid,
       {"argv[0]", "not valid UTF-8"}},
      {"invalid UTF-8 in module_search_paths",
       [](RuntimeOptions& o) { o.module_search_paths = {"\xff"}; },
       invalid,
       {"module_search_paths[0]", "not valid UTF-8"}},
      {"invalid UTF-8 in prepend_sys_path",
       [](RuntimeOptions& o) { o.prepend_sys_path = {"\xc0\xaf"}; },
       invalid,
       {"prepend_sys_path[0]", "not valid UTF-8"}},
      {"a negative drain deadline",
       [](RuntimeOptions& o) { o.drain_deadline = absl::Seconds(-1); },
       invalid,
       {"drain_deadline is negative", "-1s"}},
      {"a missing home",
       [](RuntimeOptions& o) { o.home = "/nonexistent/pyscope-bad-home"; },
       not_found,
       {"/nonexistent/pyscope-bad-home",
        absl::StrCat("/nonexistent/pyscope-bad-home/lib/",
                     pyscope::detail::compat::kStdlibDirName,
                     "/encodings/__init__.py")}},
      {"a module search path without the standard library",
       [](RuntimeOptions& o) { o.module_search_paths = {"/nonexistent/x"}; },
       not_found,
       {"/nonexistent/x/encodings/__init__.py"}},
      {"a bad home set through edit_config",
       [](RuntimeOptions& o) {
         o.edit_config = [](PyConfig& config) {
           return PyStatus_Exception(PyConfig_SetString(
                      &config, &config.home, L"/nonexistent/edited-home"))
                      ? absl::InternalError("PyConfig_SetString")
                      : absl::OkStatus();
         };
       },
       not_found,
       {"PyConfig.home", "/nonexistent/edited-home"}},
      {"an unknown stdio encoding set through edit_config",
       [](RuntimeOptions& o) {
         o.edit_config = [](PyConfig& config) {
           PyConfig_SetString(&config, &config.stdio_encoding,
                              L"no-such-codec");
           return absl::OkStatus();
         };
       },
       not_found,
       {"stdio_encoding", "no-such-codec", "no encodings/no_such_codec.py"}},
      {"an unknown filesystem encoding set through edit_config",
       [](RuntimeOptions& o) {
         o.edit_config = [](PyConfig& config) {
           PyConfig_SetString(&config, &config.filesystem_encoding, L"klingon");
           return absl::OkStatus();
         };
       },
       not_found,
       {"filesystem_encoding", "klingon"}},
      {"an unknown error handler set through edit_config",
       [](RuntimeOptions& o) {
         o.edit_config = [](PyConfig& config) {
           PyConfig_SetString(&config, &config.filesystem_errors,
                              L"no-such-handler");
           return absl::OkStatus();
         };
       },
       invalid,
       {"filesystem_errors", "no-such-handler", "surrogateescape"}},
      {"an edit_config that throws",
       [](RuntimeOptions& o) {
         o.edit_config = [](PyConfig&) -> absl::Status {
           throw std::runtime_error("host config broke");
         };
       },
       internal,
       {"edit_config threw: host config broke"}},
      {"an edit_config that throws a non-standard exception",
       [](RuntimeOptions& o) {
         o.edit_config = [](PyConfig&) -> absl::Status { throw 42; };
       },
       internal,
       {"edit_config threw a non-standard exception"}},
      {"a negative preset",
       [](RuntimeOptions& o) {
         o.preset = static_cast<RuntimeOptions::Preset>(-1);
       },
       invalid,
       {"preset", "invalid value -1"}},
      {"an overlong UTF-8 NUL in program_name",
       [](RuntimeOptions& o) { o.program_name = "py\xc0\x80"; },
       invalid,
       {"program_name", "not valid UTF-8"}},
      {"a code point beyond U+10FFFF in argv",
       [](RuntimeOptions& o) {
         o.argv = {"prog", "\xf4\x90\x80\x80"};
       },
       invalid,
       {"argv[1]", "not valid UTF-8"}},
      {"a lone continuation byte in home",
       [](RuntimeOptions& o) { o.home = "/usr\x80"; },
       invalid,
       {"RuntimeOptions::home", "not valid UTF-8"}},
      {"invalid UTF-8 in a later argv entry",
       [](RuntimeOptions& o) {
         o.argv = {"prog", "ok", "\xfe"};
       },
       invalid,
       {"argv[2]", "not valid UTF-8"}},
      {"a NUL byte in a later module_search_paths entry",
       [](RuntimeOptions& o) {
         o.module_search_paths = {"/tmp", WithNul()};
       },
       invalid,
       {"module_search_paths[1]", "NUL byte"}},
      {"a home that is a directory without the standard library",
       [](RuntimeOptions& o) { o.home = "/tmp"; },
       not_found,
       {absl::StrCat("/tmp/lib/", pyscope::detail::compat::kStdlibDirName,
                     "/encodings/__init__.py")}},
      {"a home that is a regular file",
       [](RuntimeOptions& o) { o.home = "/etc/passwd"; },
       not_found,
       {"/etc/passwd"}},
      {"a relative home",
       [](RuntimeOptions& o) { o.home = "relative/pyscope-home"; },
       not_found,
       {"relative/pyscope-home"}},
      {"a module search path that is a regular file",
       [](RuntimeOptions& o) { o.module_search_paths = {"/etc/passwd"}; },
       not_found,
       {"/etc/passwd/encodings/__init__.py"}},
      {"an empty module search path",
       [](RuntimeOptions& o) { o.module_search_paths = {""}; },
       not_found,
       {"module_search_paths", "encodings/__init__.py"}},
      {"a drain deadline of minus infinity",
       [](RuntimeOptions& o) { o.drain_deadline = -absl::InfiniteDuration(); },
       invalid,
       {"drain_deadline is negative", "-inf"}},
      {"a drain deadline of minus one nanosecond",
       [](RuntimeOptions& o) { o.drain_deadline = absl::Nanoseconds(-1); },
       invalid,
       {"drain_deadline is negative", "-1ns"}},
      {"a relative home set through edit_config",
       [](RuntimeOptions& o) {
         o.edit_config = [](PyConfig& config) {
           PyConfig_SetString(&config, &config.home, L"relative/edited");
           return absl::OkStatus();
         };
       },
       not_found,
       {"PyConfig.home", "relative/edited"}},
      {"an unknown stdio error handler set through edit_config",
       [](RuntimeOptions& o) {
         o.edit_config = [](PyConfig& config) {
           PyConfig_SetString(&config, &config.stdio_errors, L"no-such-errors");
           return absl::OkStatus();
         };
       },
       invalid,
       {"stdio_errors", "no-such-errors"}},
      {"an empty module search path list set through edit_config",
       [](RuntimeOptions& o) {
         o.edit_config = [](PyConfig& config) {
           config.module_search_paths_set = 1;
           return absl::OkStatus();
         };
       },
       not_found,
       {"encodings"}},
      {"an edit_config returning an error",
       [](RuntimeOptions& o) {
         o.edit_config = [](PyConfig&) {
           return absl::PermissionDeniedError("host says no");
         };
       },
       absl::StatusCode::kPermissionDenied,
       {"host says no"}},
      {"an unknown reinit_hazards value",
       [](RuntimeOptions& o) {
         o.reinit_hazards = static_cast<RuntimeOptions::ReinitHazards>(9);
       },
       invalid,
       {"reinit_hazards", "invalid value 9"}},
  };
}

// Values that are unusual but valid: the runtime starts and Python sees
// exactly what was asked.
struct AcceptedRuntimeOptions {
  const char* what;
  std::function<void(RuntimeOptions&)> set;
  const char* expression;  // evaluated in __main__
  const char* expected;    // its str()
};

std::vector<AcceptedRuntimeOptions> AcceptedCases() {
  return {
      {"an empty argv", [](RuntimeOptions& o) { o.argv.clear(); },
       "__import__('sys').argv", "['']"},
      {"a prepend_sys_path entry that does not exist",
       [](RuntimeOptions& o) { o.prepend_sys_path = {"/nonexistent/pre"}; },
       "__import__('sys').path[0]", "/nonexistent/pre"},
      {"module_search_paths with a missing extra entry",
       [](RuntimeOptions& o) {
         o.module_search_paths = {
             absl::StrCat(PYSCOPE_TEST_PREFIX, "/lib/",
                          pyscope::detail::compat::kStdlibDirName),
             "/nonexistent/extra"};
         o.import_site = false;
       },
       "__import__('sys').path[1]", "/nonexistent/extra"},
      {"signal handlers with the isolated preset",
       [](RuntimeOptions& o) { o.install_signal_handlers = true; },
       "(lambda s: s.getsignal(s.SIGPIPE) == s.SIG_IGN)"
       "(__import__('signal'))",
       "True"},
      {"the user site directory with the isolated preset",
       [](RuntimeOptions& o) { o.user_site_directory = true; },
       "__import__('sys').flags.no_user_site", "0"},
      {"no site module", [](RuntimeOptions& o) { o.import_site = false; },
       "'site' in __import__('sys').modules", "False"},
      {"no bytecode", [](RuntimeOptions& o) { o.write_bytecode = false; },
       "__import__('sys').dont_write_bytecode", "True"},
      {"a zero drain deadline",
       [](RuntimeOptions& o) { o.drain_deadline = absl::ZeroDuration(); },
       "6 * 7", "42"},
      {"a home with a trailing slash",
       [](RuntimeOptions& o) {
         o.home = absl::StrCat(PYSCOPE_TEST_PREFIX, "/");
       },
       "6 * 7", "42"},
      {"a reinit_warning hook with nothing to warn about",
       [](RuntimeOptions& o) {
         o.reinit_hazards = RuntimeOptions::ReinitHazards::kWarnAndTry;
         o.reinit_warning = [](const std::string&) { std::abort(); };
       },
       "6 * 7", "42"},
  };
}

// SubInterpreterOptions: the status each value gets before 3.12 and from
// 3.12 (OK: created, and it ends).
struct SubOptionsCase {
  const char* what;
  std::function<void(SubInterpreterOptions&)> set;
  absl::StatusCode before_312;
  absl::StatusCode from_312;
  const char* message_has;
  const char* message_from_312 = nullptr;  // when it differs
};

std::vector<SubOptionsCase> SubCases() {
  using Gil = SubInterpreterOptions::Gil;
  const auto ok = absl::StatusCode::kOk;
  const auto invalid = absl::StatusCode::kInvalidArgument;
  const auto unimplemented = absl::StatusCode::kUnimplemented;
  return {
      {"an unknown gil value",
       [](SubInterpreterOptions& o) { o.gil = static_cast<Gil>(5); }, invalid,
       invalid, "gil has the invalid value 5"},
      {"no fork", [](SubInterpreterOptions& o) { o.allow_fork = false; },
       unimplemented, ok, "need CPython 3.12"},
      {"no exec", [](SubInterpreterOptions& o) { o.allow_exec = false; },
       unimplemented, ok, "need CPython 3.12"},
      {"no threads", [](SubInterpreterOptions& o) { o.allow_threads = false; },
       unimplemented, ok, "need CPython 3.12"},
      {"no daemon threads",
       [](SubInterpreterOptions& o) { o.allow_daemon_threads = false; },
       unimplemented, ok, "need CPython 3.12"},
      {"daemon threads without threads",
       [](SubInterpreterOptions& o) {
         o.allow_threads = false;
         o.allow_daemon_threads = true;
       },
       unimplemented, ok, "need CPython 3.12"},
      {"checked multi-interpreter extensions",
       [](SubInterpreterOptions& o) { o.check_multi_interp_extensions = true; },
       unimplemented, ok, "need CPython 3.12"},
      {"an own allocator with checked extensions",
       [](SubInterpreterOptions& o) {
         o.use_main_obmalloc = false;
         o.check_multi_interp_extensions = true;
       },
       unimplemented, ok, "need CPython 3.12"},
      {"an own allocator without checked extensions",
       [](SubInterpreterOptions& o) {
         o.use_main_obmalloc = false;
         o.check_multi_interp_extensions = false;
       },
       unimplemented, invalid, "CPython 3.12",
       "requires check_multi_interp_extensions = true"},
      {"an own GIL with the shared allocator",
       [](SubInterpreterOptions& o) { o.gil = Gil::kOwn; }, unimplemented,
       invalid, "GIL", "requires use_main_obmalloc = false"},
      {"the Isolated() preset",
       [](SubInterpreterOptions& o) { o = SubInterpreterOptions::Isolated(); },
       unimplemented, ok, "an own GIL (PEP 684) needs CPython 3.12"},
      {"a negative end deadline",
       [](SubInterpreterOptions& o) {
         o.end_deadline = absl::Milliseconds(-5);
       },
       invalid, invalid, "end_deadline is negative (-5ms)"},
      {"an end deadline of minus infinity",
       [](SubInterpreterOptions& o) {
         o.end_deadline = -absl::InfiniteDuration();
       },
       invalid, invalid, "end_deadline is negative (-inf)"},
      {"a zero end deadline",
       [](SubInterpreterOptions& o) { o.end_deadline = absl::ZeroDuration(); },
       ok, ok, ""},
  };
}

// Inputs proved by the scenarios and cases below the tables: the isolated
// preset with use_environment, a PYTHONHOME without the standard library,
// a standard library that fails inside CPython, UTF-8 reaching Python, an
// infinite end deadline, an infinite drain deadline, an own GIL before 3.12
// through the constructor, and a zero end deadline with a thread inside.
constexpr int kInputsOutsideTables = 8;

// A valid runtime starts, runs Python and finalizes.
void ExpectValidRuntimeWorks() {
  auto runtime = ScopedRuntime::Create(TestOptions());
  REQUIRE_MESSAGE(runtime.ok(), runtime.status().ToString());
  {
    GILGuard gil;
    CHECK(pyscope_test::EvalLong("6 * 7") == 42);
  }
  CHECK((*runtime)->Finalize().ok());
}

TEST_SUITE("bad_input") {
  TEST_CASE("every bad RuntimeOptions value is a status that says what") {
    for (const BadRuntimeOptions& bad : Cases()) {
      CAPTURE(bad.what);
      RuntimeOptions options = TestOptions();
      bad.spoil(options);
      auto created = ScopedRuntime::Create(options);
      REQUIRE(!created.ok());
      CHECK(created.status().code() == bad.code);
      const std::string message(created.status().message());
      CAPTURE(message);
      for (const std::string& fragment : bad.message_has) {
        CHECK(message.find(fragment) != std::string::npos);
      }
      CHECK(Py_IsInitialized() == 0);
      // The throwing constructor says the same.
      try {
        ScopedRuntime runtime(options);
        FAIL("the constructor did not throw");
      } catch (const pyscope::Error& error) {
        CHECK(error.status() == created.status());
      }
      // ValidateRuntimeOptions sees the plain-value ones without starting.
      if (bad.code == absl::StatusCode::kInvalidArgument &&
          !options.edit_config) {
        CHECK(pyscope::ValidateRuntimeOptions(options) == created.status());
      }
      ExpectValidRuntimeWorks();
    }
  }

  TEST_CASE("unusual but valid RuntimeOptions start and are honored") {
    for (const AcceptedRuntimeOptions& accepted : AcceptedCases()) {
      const std::string what = accepted.what;
      CAPTURE(what);
      RuntimeOptions options = TestOptions();
      accepted.set(options);
      CHECK(pyscope::ValidateRuntimeOptions(options).ok());
      auto runtime = ScopedRuntime::Create(options);
      REQUIRE_MESSAGE(runtime.ok(), runtime.status().ToString());
      {
        GILGuard gil;
        CHECK(EvalString(absl::StrCat("str(", accepted.expression, ")")) ==
              accepted.expected);
      }
      CHECK((*runtime)->Finalize().ok());
    }
  }

  TEST_CASE("every SubInterpreterOptions field: a status, or created") {
    ScopedRuntime runtime(TestOptions());
    for (const SubOptionsCase& bad : SubCases()) {
      const std::string what = bad.what;
      CAPTURE(what);
      SubInterpreterOptions options = SubInterpreterOptions::Default();
      bad.set(options);
      // The free-threaded build refuses to let sub-interpreters load
      // single-phase modules, before the other settings are checked.
      const bool single_phase_refused =
          !pyscope::detail::compat::kSubInterpretersLoadSinglePhaseModules &&
          !options.check_multi_interp_extensions;
      const absl::StatusCode expected =
          single_phase_refused ? absl::StatusCode::kUnimplemented
          : pyscope::detail::compat::kHasPerInterpreterGil ? bad.from_312
                                                           : bad.before_312;
      const absl::Status validated =
          pyscope::ValidateSubInterpreterOptions(options);
      CHECK(validated.code() == expected);
      const char* fragment = single_phase_refused ? "free-threaded build"
                             : pyscope::detail::compat::kHasPerInterpreterGil &&
                                     bad.message_from_312 != nullptr
                                 ? bad.message_from_312
                                 : bad.message_has;
      if (expected != absl::StatusCode::kOk) {
        CHECK(std::string(validated.message()).find(fragment) !=
              std::string::npos);
      }
      auto created = pyscope::SubInterpreter::Create(options);
      CHECK(created.status().code() == expected);
      if (created.ok()) {
        CHECK((*created)->TryExec("x = 6 * 7").ok());
        CHECK((*created)->End().ok());
      }
      // The caller's thread is as it was: detached, and the runtime works.
      CHECK(pyscope::detail::compat::CurrentThreadStateUnchecked() == nullptr);
      GILGuard gil;
      CHECK(pyscope_test::EvalLong("6 * 7") == 42);
    }
  }

  TEST_CASE("a zero end deadline with a thread inside: at once, then OK") {
    ScopedRuntime runtime(TestOptions());
    SubInterpreterOptions options = SubInterpreterOptions::Default();
    options.end_deadline = absl::ZeroDuration();
    pyscope::SubInterpreter sub(options);
    std::atomic<bool> inside{false}, leave{false};
    std::thread worker([&] {
      GILGuard gil(sub);
      inside = true;
      pyscope::AllowThreads nogil;
      while (!leave.load()) absl::SleepFor(absl::Milliseconds(1));
    });
    while (!inside.load()) absl::SleepFor(absl::Milliseconds(1));
    CHECK(sub.End().code() == absl::StatusCode::kDeadlineExceeded);
    leave = true;
    worker.join();
    CHECK(sub.End().ok());
  }

  TEST_CASE("an own GIL before 3.12 through the throwing constructor") {
    ScopedRuntime runtime(TestOptions());
    if (pyscope::detail::compat::kHasPerInterpreterGil) {
      pyscope::SubInterpreter sub(SubInterpreterOptions::Isolated());
      CHECK(sub.own_gil());
      return;
    }
    try {
      pyscope::SubInterpreter sub(SubInterpreterOptions::Isolated());
      FAIL("created an own GIL before 3.12");
    } catch (const pyscope::Error& error) {
      CHECK(error.status().code() == absl::StatusCode::kUnimplemented);
    }
  }

  TEST_CASE("the number of bad inputs") {
    const size_t inputs = Cases().size() + AcceptedCases().size() +
                          SubCases().size() + kInputsOutsideTables;
    std::printf("figure: bad_input python=%d.%d.%d inputs=%zu\n",
                PY_MAJOR_VERSION, PY_MINOR_VERSION, PY_MICRO_VERSION, inputs);
    CHECK(inputs >= 61);
  }

  TEST_CASE("valid options pass ValidateRuntimeOptions") {
    CHECK(pyscope::ValidateRuntimeOptions(RuntimeOptions::Isolated()).ok());
    CHECK(pyscope::ValidateRuntimeOptions(RuntimeOptions::Python()).ok());
    RuntimeOptions forever = TestOptions();
    forever.drain_deadline = absl::InfiniteDuration();
    CHECK(pyscope::ValidateRuntimeOptions(forever).ok());
  }

  TEST_CASE("UTF-8 strings reach Python exactly") {
    RuntimeOptions options = TestOptions();
    options.argv = {"prog", "h\xc3\xa9llo", "\xe2\x82\xac", "\xf0\x9f\x90\x8d"};
    ScopedRuntime runtime(options);
    GILGuard gil;
    CHECK(EvalString("__import__('sys').argv[1]") == "h\xc3\xa9llo");
    CHECK(pyscope_test::EvalLong("ord(__import__('sys').argv[2])") == 0x20AC);
    CHECK(pyscope_test::EvalLong("ord(__import__('sys').argv[3])") == 0x1F40D);
  }

  TEST_CASE("bad SubInterpreterOptions are statuses, checked before CPython") {
    ScopedRuntime runtime(TestOptions());
    SubInterpreterOptions negative = SubInterpreterOptions::Default();
    negative.end_deadline = absl::Milliseconds(-5);
    CHECK(pyscope::ValidateSubInterpreterOptions(negative).code() ==
          absl::StatusCode::kInvalidArgument);
    auto refused = pyscope::SubInterpreter::Create(negative);
    CHECK(refused.status().code() == absl::StatusCode::kInvalidArgument);
    SubInterpreterOptions own_gil_shared_allocator;
    own_gil_shared_allocator.gil = SubInterpreterOptions::Gil::kOwn;
    const absl::Status status =
        pyscope::ValidateSubInterpreterOptions(own_gil_shared_allocator);
    CHECK(status.code() == (pyscope::detail::compat::kHasPerInterpreterGil
                                ? absl::StatusCode::kInvalidArgument
                                : absl::StatusCode::kUnimplemented));
    CHECK(!std::string(status.message()).empty());
  }

  TEST_CASE("an infinite end deadline waits for the threads inside") {
    ScopedRuntime runtime(TestOptions());
    SubInterpreterOptions options = SubInterpreterOptions::Default();
    options.end_deadline = absl::InfiniteDuration();
    pyscope::SubInterpreter sub(options);
    std::atomic<bool> inside{false};
    std::thread worker([&] {
      GILGuard gil(sub);
      inside.store(true);
      pyscope::AllowThreads nogil;
      absl::SleepFor(absl::Milliseconds(100));
    });
    while (!inside.load()) absl::SleepFor(absl::Milliseconds(1));
    const absl::Status ended = sub.End();
    worker.join();
    CHECK(ended.ok());
    CHECK(!sub.alive());
  }
}

// The environment is read when asked for, also with the isolated preset.
PYSCOPE_SCENARIO(IsolatedWithEnvironment) {
  RuntimeOptions options = TestOptions();
  options.use_environment = true;
  ScopedRuntime runtime(options);
  GILGuard gil;
  PrintFact("env_path",
            EvalString("'/nonexistent/env-dir' in __import__('sys').path"));
  PrintFact("safe_path_kept", EvalString("'' not in __import__('sys').path"));
  return 0;
}

// PYTHONHOME pointing nowhere, with a preset that reads the environment.
PYSCOPE_SCENARIO(BadPythonHome) {
  auto created = ScopedRuntime::Create(RuntimeOptions::Python());
  PrintFact("code", absl::StatusCodeToString(created.status().code()));
  PrintFact("message", std::string(created.status().message()));
  // The isolated preset ignores it and starts.
  auto isolated = ScopedRuntime::Create(TestOptions());
  PrintFact("isolated_ok", isolated.ok() ? 1L : 0L);
  return 0;
}

// A standard library that fails inside CPython, after its runtime was set
// up: CPython cannot start again in this process, and pyscope says so.
PYSCOPE_SCENARIO(FailureThatCPythonCannotRecoverFrom) {
  const std::string lib = pyscope_test::MakeTempDir();
  mkdir((lib + "/encodings").c_str(), 0755);
  pyscope_test::WriteFile(lib + "/encodings/__init__.py",
                          "raise ImportError('a broken standard library')\n");
  RuntimeOptions broken = TestOptions();
  broken.module_search_paths = {lib};
  auto first = ScopedRuntime::Create(broken);
  PrintFact("first_code", absl::StatusCodeToString(first.status().code()));
  PrintFact("first_names_config",
            std::string(first.status().message()).find(lib) != std::string::npos
                ? 1L
                : 0L);
  auto second = ScopedRuntime::Create(TestOptions());
  PrintFact("second_code", absl::StatusCodeToString(second.status().code()));
  PrintFact("second_message", std::string(second.status().message()));
  return 0;
}

TEST_SUITE("bad_input") {
  TEST_CASE("use_environment with the isolated preset is honored") {
    ChildResult child =
        RunScenario("IsolatedWithEnvironment", absl::Seconds(20),
                    {"PYTHONPATH=/nonexistent/env-dir"});
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(HasFact(child, "env_path=True"));
    CHECK(HasFact(child, "safe_path_kept=True"));
  }

  TEST_CASE("a PYTHONHOME without the standard library is kNotFound") {
    ChildResult child = RunScenario("BadPythonHome", absl::Seconds(20),
                                    {"PYTHONHOME=/nonexistent/env-home"});
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(HasFact(child, "code=NOT_FOUND"));
    CHECK(pyscope_test::FactOf(child, "message").find("PYTHONHOME") !=
          std::string::npos);
    CHECK(pyscope_test::FactOf(child, "message")
              .find("/nonexistent/env-home/lib/") != std::string::npos);
    CHECK(HasFact(child, "isolated_ok=1"));
  }

  TEST_CASE("after a failure CPython cannot recover from, pyscope refuses") {
    ChildResult child = RunScenario("FailureThatCPythonCannotRecoverFrom");
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    CHECK(HasFact(child, "first_code=INTERNAL"));
    CHECK(HasFact(child, "first_names_config=1"));
    CHECK(HasFact(child, "second_code=FAILED_PRECONDITION"));
    CHECK(pyscope_test::FactOf(child, "second_message")
              .find("cannot be started again in this process") !=
          std::string::npos);
  }
}

}  // namespace
