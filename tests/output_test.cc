// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// OutputCapture and ThreadOutputCapture: what Python writes arrives in C++,
// per interpreter and per thread, and the streams come back afterwards.

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "doctest/doctest.h"
#include "pyscope/pyscope.h"
#include "support/python_helpers.h"
#include "support/sync.h"

namespace {

using pyscope::GILGuard;
using pyscope::InterpreterView;
using pyscope::OutputCapture;
using pyscope::OutputStream;
using pyscope::ScopedRuntime;
using pyscope::SubInterpreter;
using pyscope::ThreadOutputCapture;
using pyscope_test::EvalBool;
using pyscope_test::EvalString;
using pyscope_test::TestOptions;

constexpr OutputStream kOut = OutputStream::kStdout;
constexpr OutputStream kErr = OutputStream::kStderr;

// Remembers the streams Python had before a capture, to compare later.
void SaveStreams() {
  pyscope::Exec("import sys\n_saved = (sys.stdout, sys.stderr)");
}
bool StreamsRestored() {
  return EvalBool("sys.stdout is _saved[0] and sys.stderr is _saved[1]");
}

TEST_SUITE("output") {
  TEST_CASE("print, write, tracebacks and logging reach the capture") {
    ScopedRuntime runtime(TestOptions());
    {
      GILGuard gil;
      SaveStreams();
    }
    {
      OutputCapture capture(InterpreterView::FromMain());
      GILGuard gil;
      pyscope::Exec("print('hello', 42)");
      pyscope::Exec("sys.stdout.write('raw\\n')");
      pyscope::Exec("print('to err', file=sys.stderr)");
      PyErr_SetString(PyExc_ValueError, "shown by PyErr_Print");
      PyErr_Print();
      pyscope::Exec("import logging\nlogging.warning('careful: %d', 3)");
      pyscope::Exec("import warnings\nwarnings.warn('old api')");
      CHECK(capture.text(kOut) == "hello 42\nraw\n");
      const std::string err = capture.text(kErr);
      CHECK(err.find("to err\n") != std::string::npos);
      CHECK(err.find("ValueError: shown by PyErr_Print") != std::string::npos);
      CHECK(err.find("careful: 3") != std::string::npos);
      CHECK(err.find("UserWarning: old api") != std::string::npos);
      // The writer behaves like a text stream for the code that checks.
      CHECK(EvalString("sys.stdout.encoding") == "utf-8");
      CHECK_FALSE(EvalBool("sys.stdout.isatty()"));
      CHECK(EvalBool("sys.stdout.writable()"));
    }
    GILGuard gil;
    CHECK(StreamsRestored());
  }

  TEST_CASE("a sink callable gets each write with its stream") {
    ScopedRuntime runtime(TestOptions());
    std::vector<std::pair<OutputStream, std::string>> got;
    {
      OutputCapture capture(InterpreterView::FromMain(),
                            [&](OutputStream stream, std::string_view text) {
                              got.emplace_back(stream, std::string(text));
                            });
      GILGuard gil;
      pyscope::Exec("import sys\nprint('a')\nsys.stderr.write('b')");
      pyscope::Exec("print('\\u00e9\\ud800')");  // lone surrogate escaped
    }
    REQUIRE(got.size() == 5);
    CHECK(got[0] == std::make_pair(kOut, std::string("a")));
    CHECK(got[1] == std::make_pair(kOut, std::string("\n")));
    CHECK(got[2] == std::make_pair(kErr, std::string("b")));
    CHECK(got[3] == std::make_pair(kOut, std::string("\xc3\xa9\\ud800")));
  }

  TEST_CASE("a throwing sink is a RuntimeError in the writing code") {
    ScopedRuntime runtime(TestOptions());
    OutputCapture capture(InterpreterView::FromMain(),
                          [](OutputStream, std::string_view) {
                            throw std::runtime_error("log is full");
                          });
    GILGuard gil;
    absl::Status status = pyscope::TryExec("print('x')");
    CHECK(status.message().find("RuntimeError") != std::string::npos);
    CHECK(status.message().find("log is full") != std::string::npos);
  }

  TEST_CASE("captures stack: the newest receives, the older one again after") {
    ScopedRuntime runtime(TestOptions());
    OutputCapture outer(InterpreterView::FromMain());
    {
      OutputCapture inner(InterpreterView::FromMain());
      GILGuard gil;
      pyscope::Exec("print('inner')");
      CHECK(inner.text(kOut) == "inner\n");
    }
    {
      GILGuard gil;
      pyscope::Exec("print('outer')");
    }
    CHECK(outer.text(kOut) == "outer\n");
    CHECK(outer.Stop().ok());
    CHECK(outer.Stop().ok());  // idempotent
  }

  TEST_CASE("each sub-interpreter's output is its own") {
    ScopedRuntime runtime(TestOptions());
    for (const auto& created : pyscope_test::CreatableOptions()) {
      const char* name = created.first;
      const pyscope::SubInterpreterOptions& options = created.second;
      CAPTURE(name);
      SubInterpreter sub(options);
      sub.Exec("import sys\n_saved = (sys.stdout, sys.stderr)");
      OutputCapture main_capture(InterpreterView::FromMain());
      OutputCapture sub_capture(InterpreterView::Of(sub));
      sub.Exec("print('from sub')");
      {
        GILGuard gil;
        pyscope::Exec("print('from main')");
      }
      CHECK(sub_capture.text(kOut) == "from sub\n");
      CHECK(main_capture.text(kOut) == "from main\n");
      // Stopping from a thread attached elsewhere (here: nowhere).
      CHECK(sub_capture.Stop().ok());
      sub.Call([]() PYSCOPE_REQUIRES_GIL { CHECK(StreamsRestored()); });
    }
  }

  TEST_CASE("per thread: concurrent threads each capture only their own") {
    ScopedRuntime runtime(TestOptions());
    constexpr int kThreads = 4;
    constexpr int kLines = 50;
    std::vector<std::string> texts(kThreads);
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    OutputCapture everything_else(InterpreterView::FromMain());
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        GILGuard gil;
        ThreadOutputCapture mine;
        ++ready;
        {
          pyscope::AllowThreads nogil;  // let the others start too
          while (ready.load() < kThreads) std::this_thread::yield();
        }
        // time.sleep(0) releases the GIL between lines, so the threads'
        // writes interleave. The loop runs in a function of its own: the
        // threads share __main__'s globals, which without a GIL (3.14t)
        // another thread changes between a line's assignment and its use.
        pyscope::Exec(absl::StrCat(
            "import time\ndef lines_of_", t, "():\n  for i in range(", kLines,
            "):\n    print('thread ", t,
            " line', i)\n    time.sleep(0)\nlines_of_", t, "()"));
        texts[t] = mine.text(kOut);
      });
    }
    for (auto& thread : threads) thread.join();
    for (int t = 0; t < kThreads; ++t) {
      std::string expected;
      for (int i = 0; i < kLines; ++i) {
        absl::StrAppend(&expected, "thread ", t, " line ", i, "\n");
      }
      CHECK(texts[t] == expected);
    }
    CHECK(everything_else.text(kOut).empty());
    {
      GILGuard gil;
      pyscope::Exec("print('main thread')");
    }
    CHECK(everything_else.text(kOut) == "main thread\n");
  }

  TEST_CASE("per thread: nested scopes, and the streams come back") {
    ScopedRuntime runtime(TestOptions());
    GILGuard gil;
    SaveStreams();
    {
      ThreadOutputCapture outer;
      {
        ThreadOutputCapture inner;
        pyscope::Exec("print('in')");
        CHECK(inner.text(kOut) == "in\n");
      }
      pyscope::Exec("print('out')");
      CHECK(outer.text(kOut) == "out\n");
      CHECK_FALSE(StreamsRestored());
    }
    CHECK(StreamsRestored());
  }

  TEST_CASE("per thread: needs the GIL (status, not a crash)") {
    ScopedRuntime runtime(TestOptions());
    ThreadOutputCapture capture(std::nothrow);
    CHECK(capture.status().code() == absl::StatusCode::kFailedPrecondition);
    CHECK_THROWS_AS([] { ThreadOutputCapture capture(nullptr); }(),
                    pyscope::Error);
  }

  TEST_CASE("a handler made during the capture forwards after it") {
    ScopedRuntime runtime(TestOptions());
    {
      GILGuard gil;
      pyscope::Exec(
          "import io, sys\n_real = io.StringIO()\nsys.stderr = _real");
    }
    {
      OutputCapture capture(InterpreterView::FromMain());
      GILGuard gil;
      pyscope::Exec(
          "import logging\nlogging.basicConfig(format='%(message)s')\n"
          "logging.error('during')");
      CHECK(capture.text(kErr) == "during\n");
    }
    GILGuard gil;
    pyscope::Exec("logging.error('after')");
    CHECK(EvalString("_real.getvalue()") == "after\n");
    CHECK(EvalBool("sys.stderr is _real"));
  }

  TEST_CASE("Python code that replaces the stream keeps its own") {
    ScopedRuntime runtime(TestOptions());
    {
      OutputCapture capture(InterpreterView::FromMain());
      GILGuard gil;
      pyscope::Exec(
          "import io, sys\n_mine = io.StringIO()\nsys.stdout = _mine");
    }
    GILGuard gil;
    CHECK(EvalBool("sys.stdout is _mine"));
  }

  TEST_CASE("a capture that outlives its interpreter or runtime stops OK") {
    std::unique_ptr<OutputCapture> of_main;
    {
      ScopedRuntime runtime(TestOptions());
      SubInterpreter sub;
      auto capture = OutputCapture::Create(InterpreterView::Of(sub));
      REQUIRE(capture.ok());
      sub.Exec("print('before end')");
      CHECK((*capture)->text(kOut) == "before end\n");
      REQUIRE(sub.End().ok());
      CHECK((*capture)->Stop().ok());
      auto main_capture = OutputCapture::Create(InterpreterView::FromMain());
      REQUIRE(main_capture.ok());
      of_main = *std::move(main_capture);
    }
    CHECK(of_main->Stop().ok());
    // A capture of an interpreter that is gone is refused with its status.
    ScopedRuntime again(TestOptions());
    auto stale = OutputCapture::Create(InterpreterView());
    CHECK(stale.status().code() == absl::StatusCode::kFailedPrecondition);
  }
}

}  // namespace
