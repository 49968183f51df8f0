// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Re-initialization soak. Each cycle: ScopedRuntime (default options, so a
// refusal would fail the cycle) -> import and use the standard library's
// C extension modules that survive re-initialization on this CPython ->
// two sub-interpreters (own GIL on 3.12+) -> native threads calling back
// into both -> Finalize. Every cycle is asserted; RSS is read after each.
//
// Beside it, measured with the raw C API (tests/reinit/): which extension
// modules survive re-initialization (raw_reinit per module, a child each),
// numpy where installed, and how often the runtime after one that
// finalized with Python daemon threads running crashes (raw, and with
// pyscope told to try anyway). The modules that fail must all be in
// pyscope's refusal list (compat::ReinitUnsafeModules).
//
// Knobs: PYSCOPE_REINIT_CYCLES (100), PYSCOPE_REINIT_RAW_CYCLES (cycles per
// module in the survey, 3), PYSCOPE_REINIT_DAEMON_RUNS (runs of each
// daemon-thread measurement, 20).

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "doctest/doctest.h"
#include "pyscope/pyscope.h"
#include "reliability/reliability.h"
#include "support/python_helpers.h"
#include "support/scenario.h"

namespace {

using pyscope::GILGuard;
using pyscope::RuntimeOptions;
using pyscope::ScopedRuntime;
using pyscope::SubInterpreter;
using pyscope_test::ChildResult;
using pyscope_test::FactOf;
using pyscope_test::Knob;
using pyscope_test::PrintFact;

// Debian's numpy (python3-numpy), for the system CPython only.
constexpr char kDistPackages[] = "/usr/lib/python3/dist-packages";

bool ListedUnsafe(const std::string& module) {
  size_t count = 0;
  const auto* unsafe = pyscope::detail::compat::ReinitUnsafeModules(&count);
  for (size_t i = 0; i < count; ++i) {
    if (module == unsafe[i].module) return true;
  }
  return false;
}

// The standard library's C extension modules of this CPython (lib-dynload
// and built in), without test modules. Requires the GIL.
std::vector<std::string> StdlibExtensionModules() PYSCOPE_REQUIRES_GIL {
  const std::string names = pyscope_test::EvalString(
      "(lambda os, sys, sc: ','.join(sorted(set("
      "[f.split('.')[0] for f in os.listdir(os.path.join("
      "sc.get_path('platstdlib'), 'lib-dynload')) if f.endswith('.so')] + "
      "[m for m in sys.builtin_module_names if m not in ('__main__',)]))))"
      "(__import__('os'), __import__('sys'), __import__('sysconfig'))");
  std::vector<std::string> modules;
  for (const absl::string_view m : absl::StrSplit(names, ',')) {
    if (absl::StartsWith(m, "_test") || absl::StartsWith(m, "xx") ||
        absl::StartsWith(m, "_xxtest") || m == "_ctypes_test" ||
        m == "_tkinter" || m.empty()) {
      continue;
    }
    modules.emplace_back(m);
  }
  return modules;
}

// What each soak cycle imports and uses: the survivors among these.
constexpr const char* kSoakUses[][2] = {
    {"_json", "import json; json.dumps({'a': [1, 2.5]})"},
    {"_pickle", "import pickle; pickle.loads(pickle.dumps([1, 'x']))"},
    {"_struct", "import struct; struct.pack('<i', 1)"},
    {"math", "import math; math.sqrt(2.0)"},
    {"array", "import array; array.array('i', [1, 2]).tobytes()"},
    {"_random", "import random; random.random()"},
    {"_bisect", "import bisect; bisect.bisect([1, 3], 2)"},
    {"_heapq", "import heapq; heapq.heappush([], 1)"},
    {"select", "import select; select.poll()"},
    {"zlib", "import zlib; zlib.decompress(zlib.compress(b'x'))"},
    {"binascii", "import binascii; binascii.hexlify(b'x')"},
    {"unicodedata", "import unicodedata; unicodedata.name('a')"},
    {"_socket", "import socket; socket.socket().close()"},
    {"_csv", "import csv, io; list(csv.reader(io.StringIO('a,b')))"},
    {"pyexpat",
     "import xml.parsers.expat as x; x.ParserCreate().Parse('<a/>')"},
    {"_datetime", "import datetime; datetime.datetime.now().isoformat()"},
    {"_decimal", "import decimal; str(decimal.Decimal(1) / 3)"},
    {"_ctypes", "import ctypes; ctypes.CFUNCTYPE(ctypes.c_int)(lambda: 1)()"},
    {"_asyncio", "import asyncio; asyncio.run(asyncio.sleep(0))"},
    {"_elementtree", "import xml.etree.ElementTree as E; E.fromstring('<a/>')"},
    {"_hashlib", "import hashlib; hashlib.sha256(b'x').hexdigest()"},
    {"_sqlite3", "import sqlite3; sqlite3.connect(':memory:').close()"},
    {"_zoneinfo", "import zoneinfo; zoneinfo.ZoneInfo('UTC')"},
    {"_lzma", "import lzma; lzma.decompress(lzma.compress(b'x'))"},
    {"_bz2", "import bz2; bz2.decompress(bz2.compress(b'x'))"},
};

long RssKb() {
  std::ifstream statm("/proc/self/statm");
  long size = 0, resident = 0;
  statm >> size >> resident;
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

// One cycle; "" when it worked, otherwise what failed.
std::string Cycle(int cycle, std::vector<std::string>* imported) {
  auto runtime = ScopedRuntime::Create(RuntimeOptions::Isolated());
  if (!runtime.ok()) return runtime.status().ToString();
  {
    GILGuard gil;
    imported->clear();
    for (const auto& use : kSoakUses) {
      if (ListedUnsafe(use[0])) continue;
      if (pyscope::TryExec(absl::StrCat("import ", use[0])).ok()) {
        const absl::Status used = pyscope::TryExec(use[1]);
        if (!used.ok()) return absl::StrCat(use[0], ": ", used.ToString());
        imported->push_back(use[0]);
      }
    }
    pyscope::Exec(absl::StrCat("cycle = ", cycle, "\ncalls = []"));
  }
  std::vector<std::unique_ptr<SubInterpreter>> subs;
  for (const auto& [name, options] : pyscope_test::CreatableOptions()) {
    if (Knob("PYSCOPE_REINIT_SUBS", 1) == 0) break;
    subs.push_back(std::make_unique<SubInterpreter>(options));
    const absl::Status ran = subs.back()->TryExec(
        "import math, _json, zlib\ncalls = []\n"
        "assert math.sqrt(4.0) == 2.0");
    if (!ran.ok())
      return absl::StrCat("sub-interpreter ", name, ": ", ran.ToString());
  }
  // Counted by list.append, which stays atomic without a GIL (3.14t), where
  // `calls += 1` from two threads in one interpreter would race.
  constexpr int kThreads = 4, kCalls = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        if (t % 2 == 0) {
          GILGuard gil;
          pyscope::Exec("calls.append(1)");
        } else if (!subs.empty()) {
          GILGuard gil(*subs[t % subs.size()]);
          pyscope::Exec("calls.append(1)");
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  long main_calls = 0, sub_calls = 0;
  {
    GILGuard gil;
    main_calls = pyscope_test::EvalLong("len(calls)");
    if (pyscope_test::EvalLong("cycle") != cycle) return "wrong cycle";
  }
  for (auto& sub : subs) {
    sub_calls += sub->Call([]() PYSCOPE_REQUIRES_GIL {
      return pyscope_test::EvalLong("len(calls)");
    });
  }
  if (main_calls != kThreads / 2 * kCalls ||
      sub_calls != (subs.empty() ? 0 : kThreads / 2 * kCalls)) {
    return absl::StrCat("calls main=", main_calls, " subs=", sub_calls);
  }
  for (auto& sub : subs) {
    const absl::Status ended = sub->End();
    if (!ended.ok()) return ended.ToString();
  }
  const absl::Status finalized = (*runtime)->Finalize();
  if (!finalized.ok()) return finalized.ToString();
  if (!pyscope::PendingReinitHazards().empty()) {
    return absl::StrCat("hazard noted: ",
                        absl::StrJoin(pyscope::PendingReinitHazards(), "; "));
  }
  return "";
}

PYSCOPE_SCENARIO(ReinitSoak) {
  const int cycles = static_cast<int>(Knob("PYSCOPE_REINIT_CYCLES", 100));
  long ok = 0, rss_second = 0, rss_last = 0;
  std::vector<std::string> imported;
  for (int cycle = 1; cycle <= cycles; ++cycle) {
    const std::string failure = Cycle(cycle, &imported);
    const long rss = RssKb();
    if (cycle == 2) rss_second = rss;
    rss_last = rss;
    std::printf("cycle=%d %s rss_kb=%ld\n", cycle,
                failure.empty() ? "ok" : failure.c_str(), rss);
    if (!failure.empty()) break;
    ++ok;
  }
  PrintFact("cycles", static_cast<long>(cycles));
  PrintFact("cycles_ok", ok);
  PrintFact("modules", absl::StrJoin(imported, ","));
  PrintFact("rss_second_kb", rss_second);
  PrintFact("rss_last_kb", rss_last);
  return 0;
}

// The daemon-thread hazard with pyscope, told to try anyway.
PYSCOPE_SCENARIO(DaemonThenReinit) {
  {
    ScopedRuntime first;
    GILGuard gil;
    pyscope::Exec(
        "import threading, time\n"
        "def spin():\n"
        "    while True:\n"
        "        sum(range(100))\n"
        "        time.sleep(0.0005)\n"
        "for _ in range(4):\n"
        "    threading.Thread(target=spin, daemon=True).start()\n"
        "time.sleep(0.02)\n");
  }
  PrintFact("first", "ok");
  RuntimeOptions anyway;
  anyway.reinit_hazards = RuntimeOptions::ReinitHazards::kWarnAndTry;
  anyway.reinit_warning = [](const std::string&) {};
  ScopedRuntime second(anyway);
  {
    GILGuard gil;
    pyscope::Exec(
        "import time\n"
        "end = time.monotonic() + 0.2\n"
        "while time.monotonic() < end:\n"
        "    sum(range(1000))\n"
        "    time.sleep(0.0005)\n");
  }
  const absl::Status finalized = second.Finalize();
  PrintFact("second", finalized.ok() ? "ok" : "failed");
  return 0;
}

// numpy imported in two generations, pyscope told to try anyway.
PYSCOPE_SCENARIO(NumpyTwice) {
  for (int generation = 1; generation <= 2; ++generation) {
    RuntimeOptions options;
    options.prepend_sys_path = {kDistPackages};
    options.reinit_hazards = RuntimeOptions::ReinitHazards::kWarnAndTry;
    options.reinit_warning = [](const std::string&) {};
    ScopedRuntime runtime(options);
    GILGuard gil;
    const absl::Status imported =
        pyscope::TryExec("import numpy; numpy.arange(3).sum()");
    PrintFact(absl::StrCat("generation", generation).c_str(),
              imported.ok() ? std::string("ok") : imported.ToString());
  }
  return 0;
}

std::string Outcome(const ChildResult& child) {
  if (child.timed_out) return "hang";
  if (child.KilledBy(SIGABRT)) return "abort";
  if (child.KilledBy(SIGSEGV) || child.KilledBy(SIGBUS)) return "segfault";
  if (child.ExitedWith(0)) return "ok";
  if (child.ExitedWith(3)) return "import-error-later";
  if (child.ExitedWith(5)) return "unavailable";
  return absl::StrCat("exit-", child.exit_code, "-signal-", child.term_signal);
}

std::string BuildFile(const char* relative) {
  // The test binaries live in <build>/tests/reliability; the reproducers
  // in <build>/tests/reinit.
  std::string self = pyscope_test::SelfExecutable();
  self = self.substr(0, self.rfind('/'));
  return absl::StrCat(self.substr(0, self.rfind('/')), "/", relative);
}

TEST_SUITE("reliability") {
  TEST_CASE("re-initialization soak: every cycle works") {
    const ChildResult child =
        pyscope_test::RunScenario("ReinitSoak", absl::Seconds(1200));
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    const long cycles = std::stol(FactOf(child, "cycles"));
    CHECK(FactOf(child, "cycles_ok") == FactOf(child, "cycles"));
    const long second = std::stol(FactOf(child, "rss_second_kb"));
    const long last = std::stol(FactOf(child, "rss_last_kb"));
    const double per_cycle =
        cycles > 2 ? static_cast<double>(last - second) / (cycles - 2) : 0.0;
    // The same imports through the raw C API, as the baseline of what
    // CPython itself keeps per re-initialization.
    std::vector<std::string> raw = {BuildFile("reinit/raw_reinit"),
                                    std::to_string(cycles)};
    for (const absl::string_view m :
         absl::StrSplit(FactOf(child, "modules"), ',', absl::SkipEmpty())) {
      raw.emplace_back(m);
    }
    const ChildResult baseline =
        pyscope_test::RunChild(raw, absl::Seconds(600));
    long raw_second = 0, raw_last = 0;
    for (const absl::string_view line : absl::StrSplit(baseline.out, '\n')) {
      const size_t at = line.find("rss_kb=");
      if (at == absl::string_view::npos) continue;
      const long rss = std::atol(std::string(line.substr(at + 7)).c_str());
      if (absl::StartsWith(line, "cycle=2 ")) raw_second = rss;
      raw_last = rss;
    }
    const double raw_per_cycle =
        cycles > 2 ? static_cast<double>(raw_last - raw_second) / (cycles - 2)
                   : 0.0;
    pyscope_test::Figure(
        "reinit_soak",
        absl::StrFormat("cycles=%d ok=%s rss_second_kb=%d rss_last_kb=%d "
                        "rss_growth_kb_per_cycle=%.1f "
                        "raw_imports_only_growth_kb_per_cycle=%.1f modules=%s",
                        cycles, FactOf(child, "cycles_ok"), second, last,
                        per_cycle, raw_per_cycle, FactOf(child, "modules")));
  }

  TEST_CASE("which extension modules survive re-initialization (raw C API)") {
    std::vector<std::string> modules;
    {
      ScopedRuntime runtime(pyscope_test::TestOptions());
      GILGuard gil;
      modules = StdlibExtensionModules();
    }
    modules.push_back("numpy");
    const long cycles = Knob("PYSCOPE_REINIT_RAW_CYCLES", 3);
    const std::string raw = BuildFile("reinit/raw_reinit");
    std::vector<std::string> outcomes(modules.size());
    pyscope_test::RunMany(
        static_cast<int>(modules.size()), 2,
        [&](int i) {
          return pyscope_test::RunChild(
              {raw, std::to_string(cycles), modules[i]}, absl::Seconds(60),
              {absl::StrCat("RAW_REINIT_PATH=", kDistPackages)});
        },
        [&](int i, const ChildResult& child) { outcomes[i] = Outcome(child); });
    std::vector<std::string> survive, fail, unavailable;
    for (size_t i = 0; i < modules.size(); ++i) {
      if (outcomes[i] == "ok") {
        survive.push_back(modules[i]);
      } else if (outcomes[i] == "unavailable") {
        unavailable.push_back(modules[i]);
      } else {
        fail.push_back(absl::StrCat(modules[i], ":", outcomes[i]));
        // Every module that fails is one pyscope refuses after.
        CHECK_MESSAGE(ListedUnsafe(modules[i]), modules[i],
                      " fails re-initialization (", outcomes[i],
                      ") but is not in compat::ReinitUnsafeModules");
      }
    }
    pyscope_test::Figure(
        "reinit_modules",
        absl::StrFormat("cycles=%d survive=%d fail=%d unavailable=%d "
                        "failing=%s surviving=%s",
                        cycles, survive.size(), fail.size(), unavailable.size(),
                        fail.empty() ? "-" : absl::StrJoin(fail, ","),
                        absl::StrJoin(survive, ",")));
  }

  TEST_CASE("daemon threads at finalization, then a new runtime (measured)") {
    const int runs = static_cast<int>(Knob("PYSCOPE_REINIT_DAEMON_RUNS", 20));
    const std::string raw = BuildFile("reinit/raw_daemon_reinit");
    for (const bool with_pyscope : {false, true}) {
      std::map<std::string, int> counts;
      pyscope_test::RunMany(
          runs, 2,
          [&](int) {
            return with_pyscope
                       ? pyscope_test::RunScenario("DaemonThenReinit",
                                                   absl::Seconds(30))
                       : pyscope_test::RunChild({raw, "4"}, absl::Seconds(30));
          },
          [&](int, const ChildResult& child) {
            std::string outcome = Outcome(child);
            if (outcome == "ok" && !pyscope_test::HasFact(child, "second=ok")) {
              outcome = "second-failed";
            }
            ++counts[outcome];
          });
      std::vector<std::string> fields;
      for (const auto& [outcome, n] : counts) {
        fields.push_back(absl::StrCat(outcome, "=", n));
      }
      pyscope_test::Figure(
          with_pyscope ? "reinit_daemon_pyscope_try_anyway"
                       : "reinit_daemon_raw",
          absl::StrCat("runs=", runs, " ", absl::StrJoin(fields, " ")));
    }
  }

  TEST_CASE("numpy imported in two runtimes (measured where installed)") {
    const ChildResult child =
        pyscope_test::RunScenario("NumpyTwice", absl::Seconds(60));
    const std::string first = FactOf(child, "generation1");
    if (first != "ok") {
      MESSAGE("numpy is not importable here: " << first);
      return;
    }
    const std::string second = FactOf(child, "generation2");
    pyscope_test::Figure(
        "reinit_numpy_pyscope_try_anyway",
        absl::StrCat(
            "outcome=", Outcome(child), " second_import=",
            second.empty() ? "-" : absl::StrReplaceAll(second, {{" ", "_"}})));
  }
}

}  // namespace
