// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Every run-time misuse dies with SIGABRT and one paragraph on stderr that
// names the misuse, the guard type, the thread and where the guard was
// created. Each runs misuse_driver in a child process with a timeout.

#include <signal.h>

#include <cstdlib>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "doctest/doctest.h"
#include "pyscope/pyscope.h"
#include "support/python_helpers.h"
#include "support/scenario.h"
#include "support/subprocess.h"

namespace {

using pyscope_test::ChildResult;

using pyscope_test::FactOf;

ChildResult RunDriver(const std::string& misuse) {
  const char* driver = std::getenv("PYSCOPE_MISUSE_DRIVER");
  REQUIRE_MESSAGE(driver != nullptr, "PYSCOPE_MISUSE_DRIVER is not set");
  return pyscope_test::RunChild({driver, misuse}, absl::Seconds(20));
}

// Runs driver `scenario` and checks the death and the paragraph, which
// names `misuse` (by default the scenario's name).
void ExpectReport(const std::string& scenario, const std::string& guard,
                  const std::string& headline, std::string misuse = "") {
  if (misuse.empty()) misuse = scenario;
  const ChildResult child = RunDriver(scenario);
  INFO(child.Describe());
  CHECK(child.KilledBy(SIGABRT));
  const std::string site = FactOf(child, "site");
  const std::string thread = FactOf(child, "thread");
  REQUIRE(!site.empty());
  REQUIRE(!thread.empty());
  // One paragraph: what, which guard, created where, on which thread.
  CHECK(child.err.find(absl::StrCat("pyscope misuse (", misuse, "): ", guard,
                                    " created at ", site, " in ")) !=
        std::string::npos);
  CHECK(child.err.find(headline) != std::string::npos);
  CHECK(child.err.find(absl::StrCat(", on thread ", thread, ". ")) !=
        std::string::npos);
  // When detected on another thread, the creating thread is named too.
  const std::string creator = FactOf(child, "creator");
  if (!creator.empty()) {
    CHECK(child.err.find(absl::StrCat(" on thread ", creator, " (")) !=
          std::string::npos);
  }
  // A single line, printed once.
  const size_t first = child.err.find("pyscope misuse (");
  CHECK(child.err.find("pyscope misuse (", first + 1) == std::string::npos);
  const size_t end = child.err.find('\n', first);
  CHECK(end == child.err.size() - 1);
}

TEST_SUITE("misuse") {
  TEST_CASE("a guard destroyed on another thread") {
    ExpectReport("DestroyedOnOtherThread", "GILGuard",
                 "destroyed on a thread other than the one that created it");
  }

  TEST_CASE("guards destroyed out of order") {
    ExpectReport("DestroyedOutOfOrder", "GILGuard", "destroyed out of order");
  }

  TEST_CASE("AllowThreads without the GIL") {
    ExpectReport("AllowThreadsWithoutGil", "AllowThreads",
                 "created on a thread that does not hold the GIL");
  }

  TEST_CASE("the runtime finalized on another thread") {
    ExpectReport(
        "FinalizeOnOtherThread", "ScopedRuntime",
        "finalized on a thread other than the one that initialized it");
  }

  TEST_CASE("the runtime finalized inside a guard") {
    ExpectReport("FinalizeWhileAttached", "ScopedRuntime",
                 "finalized while the finalizing thread is attached to Python");
  }

  TEST_CASE("the runtime finalized while a raw PyGILState_Ensure holds it") {
    ExpectReport("FinalizeWhileRawAttached", "ScopedRuntime",
                 "finalized while the finalizing thread is attached to Python",
                 "FinalizeWhileAttached");
  }

  TEST_CASE("the runtime finalized from its own exit callback") {
    ExpectReport("FinalizeReentered", "ScopedRuntime",
                 "finalized again from inside its own finalization");
  }

  TEST_CASE("a thread exiting while its guard is live") {
    ExpectReport("ThreadExitedInsideGuard", "GILGuard",
                 "was still live when its thread exited");
  }

  TEST_CASE("ThreadStateSwap whose thread state was deleted") {
    ExpectReport("SwapTargetLost", "ThreadStateSwap", "lost its thread state");
  }

  TEST_CASE("ThreadStateSwap without the GIL") {
    ExpectReport("SwapWithoutGil", "ThreadStateSwap", "cannot swap");
  }

  TEST_CASE("a second ScopedRuntime") {
    ExpectReport("SecondRuntime", "ScopedRuntime",
                 "created while another ScopedRuntime is live");
  }

  TEST_CASE("a replaced handler that returns lets the process go on") {
    const ChildResult child = RunDriver("CustomHandler");
    INFO(child.Describe());
    CHECK(child.ExitedWith(0));
    const std::string site = FactOf(child, "site");
    const std::string line = site.substr(site.rfind(':') + 1);
    CHECK(child.out.find(absl::StrCat("handled=AllowThreadsWithoutGil "
                                      "AllowThreads line ",
                                      line, "\n")) != std::string::npos);
    CHECK(child.out.find("continued=1\n") != std::string::npos);
    CHECK(child.err.find("pyscope misuse") == std::string::npos);
  }

  TEST_CASE("SetMisuseHandler installs a handler and returns the previous") {
    pyscope::ScopedRuntime runtime(pyscope_test::TestOptions());
    pyscope_test::RecordingMisuseHandler recording;
    const int line = __LINE__ + 1;
    { pyscope::AllowThreads nogil; }  // no GIL held: a misuse
    const auto reports = recording.reports();
    REQUIRE(reports.size() == 1);
    const pyscope::MisuseReport& report = reports[0];
    CHECK(report.misuse == pyscope::Misuse::kAllowThreadsWithoutGil);
    CHECK(std::string(report.guard) == "AllowThreads");
    CHECK(report.created_at.line() == line);
    CHECK(std::string(report.created_at.file()).find("misuse_test.cc") !=
          std::string::npos);
    CHECK(report.message.find("pyscope misuse (AllowThreadsWithoutGil): "
                              "AllowThreads created at ") == 0);
    CHECK(report.message.find(
              absl::StrCat("on thread ", pyscope_test::ThreadId(), " (")) !=
          std::string::npos);
    // The thread is usable afterwards.
    CHECK(pyscope::detail::ThisThread().level == 0);
    pyscope::GILGuard gil;
    CHECK(pyscope_test::EvalLong("2 * 21") == 42);
  }

  TEST_CASE("SetMisuseHandler chains: each call returns the one it replaced") {
    auto first = [](const pyscope::MisuseReport&) {};
    auto second = [](const pyscope::MisuseReport&) {};
    const pyscope::MisuseHandler original = pyscope::SetMisuseHandler(first);
    const bool first_returned = pyscope::SetMisuseHandler(second) ==
                                static_cast<pyscope::MisuseHandler>(first);
    const bool second_returned = pyscope::SetMisuseHandler(original) ==
                                 static_cast<pyscope::MisuseHandler>(second);
    CHECK(first_returned);
    CHECK(second_returned);
  }
}

}  // namespace
