// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// InterpreterView (weak handles with PEP 788 semantics), MainInterpreter()
// from inside sub-interpreter scopes, and InterpreterLocal<T>.

#include <atomic>
#include <memory>
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
using pyscope::InterpreterLocal;
using pyscope::InterpreterView;
using pyscope::OwnedRef;
using pyscope::ScopedRuntime;
using pyscope::SubInterpreter;
using pyscope_test::EvalLong;
using pyscope_test::TestOptions;

PyInterpreterState* Here() {
  return PyThreadState_GetInterpreter(PyThreadState_Get());
}

absl::StatusCode AttachCode(const InterpreterView& view) {
  absl::StatusCode code = absl::StatusCode::kOk;
  std::thread([&] {
    GILGuard gil(view, std::nothrow);
    code = gil.status().code();
  }).join();
  return code;
}

TEST_SUITE("interpreter_view") {
  TEST_CASE("a view of the main interpreter attaches while it runs") {
    InterpreterView before = InterpreterView::FromMain();
    CHECK(before.empty());
    CHECK(before.Check().code() == absl::StatusCode::kFailedPrecondition);
    InterpreterView view;
    {
      ScopedRuntime runtime(TestOptions());
      view = InterpreterView::FromMain();
      CHECK(view.is_main());
      CHECK(view.id() == 0);
      CHECK(view.alive());
      std::thread([view] {
        GILGuard gil(view);
        CHECK(Here() == PyInterpreterState_Main());
      }).join();
      CHECK(AttachCode(InterpreterView()) ==
            absl::StatusCode::kFailedPrecondition);
    }
    // Finalized: kUnavailable, never an attachment.
    CHECK(view.Check().code() == absl::StatusCode::kUnavailable);
    CHECK(AttachCode(view) == absl::StatusCode::kUnavailable);
    // Re-initialized: the old view does not reach the new runtime.
    ScopedRuntime again(TestOptions());
    CHECK(view.Check().code() == absl::StatusCode::kFailedPrecondition);
    CHECK(view.Check().message().find("generation") != std::string::npos);
    CHECK(AttachCode(view) == absl::StatusCode::kFailedPrecondition);
    CHECK_THROWS_AS([&] { GILGuard gil(view); }(), pyscope::Error);
    CHECK(InterpreterView::FromMain() != view);
    CHECK(AttachCode(InterpreterView::FromMain()) == absl::StatusCode::kOk);
  }

  TEST_CASE("a view of a sub-interpreter: alive, ending, ended, destroyed") {
    ScopedRuntime runtime(TestOptions());
    for (const auto& created : pyscope_test::CreatableOptions()) {
      const char* name = created.first;
      const pyscope::SubInterpreterOptions& options = created.second;
      CAPTURE(name);
      pyscope::SubInterpreterOptions with_deadline = options;
      with_deadline.end_deadline = absl::Seconds(60);
      auto sub = std::make_unique<SubInterpreter>(with_deadline);
      const InterpreterView view = InterpreterView::Of(*sub);
      const InterpreterView copy = view;
      CHECK(copy == view);
      CHECK_FALSE(view.is_main());
      CHECK(view.id() == sub->id());
      std::thread([copy, &sub] {
        GILGuard gil(copy);
        CHECK(Here() == sub->interpreter_state());
      }).join();
      // Ending: a thread inside keeps End() waiting; meanwhile the view
      // refuses with kUnavailable.
      std::atomic<bool> inside{false};
      std::atomic<bool> leave{false};
      std::thread occupant([&] {
        GILGuard gil(view);
        inside = true;
        pyscope::AllowThreads nogil;
        pyscope_test::WaitFor(leave, absl::Seconds(60));
      });
      REQUIRE(pyscope_test::WaitFor(inside));
      absl::Status ended;
      std::thread ender([&] { ended = sub->End(); });
      absl::StatusCode during = absl::StatusCode::kOk;
      for (int i = 0; i < 20000; ++i) {
        during = view.Check().code();
        if (during != absl::StatusCode::kOk) break;
        absl::SleepFor(absl::Milliseconds(1));
      }
      CHECK(during == absl::StatusCode::kUnavailable);
      CHECK(AttachCode(view) == absl::StatusCode::kUnavailable);
      leave = true;
      occupant.join();
      ender.join();
      REQUIRE(ended.ok());
      CHECK(view.Check().code() == absl::StatusCode::kFailedPrecondition);
      CHECK(AttachCode(view) == absl::StatusCode::kFailedPrecondition);
      sub.reset();
      CHECK(AttachCode(copy) == absl::StatusCode::kFailedPrecondition);
    }
  }

  TEST_CASE("FromCurrent names the interpreter the thread is in") {
    ScopedRuntime runtime(TestOptions());
    SubInterpreter sub;
    {
      GILGuard gil;
      auto view = InterpreterView::FromCurrent();
      REQUIRE(view.ok());
      CHECK(view->is_main());
    }
    {
      GILGuard gil(sub);
      auto view = InterpreterView::FromCurrent();
      REQUIRE(view.ok());
      CHECK(*view == InterpreterView::Of(sub));
      // An interpreter pyscope did not create: kNotFound, not a guess.
      PyThreadState* mine = PyThreadState_Get();
      PyThreadState* raw = Py_NewInterpreter();
      REQUIRE(raw != nullptr);
      auto foreign = InterpreterView::FromCurrent();
      CHECK(foreign.status().code() == absl::StatusCode::kNotFound);
      Py_EndInterpreter(raw);
      PyThreadState_Swap(mine);
    }
    CHECK(InterpreterView::FromCurrent().status().code() ==
          absl::StatusCode::kFailedPrecondition);
  }

  TEST_CASE("a view's sub-interpreter is ended by finalization: a status") {
    InterpreterView view;
    {
      ScopedRuntime runtime(TestOptions());
      SubInterpreter sub;
      view = InterpreterView::Of(sub);
      CHECK(view.alive());
      REQUIRE(runtime.Finalize().ok());
      CHECK(view.Check().code() == absl::StatusCode::kUnavailable);
    }
    ScopedRuntime again(TestOptions());
    CHECK(AttachCode(view) == absl::StatusCode::kFailedPrecondition);
  }
}

TEST_SUITE("main_interpreter") {
  TEST_CASE("MainInterpreter() from inside a sub-interpreter scope, and back") {
    ScopedRuntime runtime(TestOptions());
    {
      GILGuard gil;
      pyscope::Exec("where = 'main'");
    }
    for (const auto& created : pyscope_test::CreatableOptions()) {
      const char* name = created.first;
      const pyscope::SubInterpreterOptions& options = created.second;
      CAPTURE(name);
      SubInterpreter sub(options);
      sub.Exec("where = 'sub'");
      std::thread([&] {
        GILGuard in_sub(sub);
        {
          GILGuard in_main(pyscope::MainInterpreter());
          CHECK(Here() == PyInterpreterState_Main());
          CHECK(pyscope_test::EvalString("where") == "main");
          {
            GILGuard nested(sub);  // and into the sub again
            CHECK(pyscope_test::EvalString("where") == "sub");
          }
        }
        CHECK(Here() == sub.interpreter_state());
        CHECK(pyscope_test::EvalString("where") == "sub");
        {
          pyscope::AllowThreads nogil;  // parked in the sub
          GILGuard in_main(pyscope::MainInterpreter());
          CHECK(pyscope_test::EvalString("where") == "main");
        }
        CHECK(pyscope_test::EvalString("where") == "sub");
      }).join();
    }
  }
}

struct Counted {
  static inline std::atomic<int> live{0};
  explicit Counted(long v) : value(v) { ++live; }
  ~Counted() { --live; }
  long value;
};

TEST_SUITE("interpreter_local") {
  TEST_CASE("one value per interpreter, dropped when it ends") {
    static InterpreterLocal<Counted> local;
    Counted::live = 0;
    {
      ScopedRuntime runtime(TestOptions());
      int made = 0;
      {
        GILGuard gil;
        CHECK(local.Get() == nullptr);
        CHECK(local.GetOrCreate([&] { return Counted(++made); }).value == 1);
        CHECK(local.GetOrCreate([&] { return Counted(++made); }).value == 1);
      }
      for (const auto& created : pyscope_test::CreatableOptions()) {
        const char* name = created.first;
        const pyscope::SubInterpreterOptions& options = created.second;
        CAPTURE(name);
        auto sub = std::make_unique<SubInterpreter>(options);
        const long value = sub->Call([&]() PYSCOPE_REQUIRES_GIL {
          return local.GetOrCreate([&] { return Counted(++made); }).value;
        });
        CHECK(value == made);
        CHECK(Counted::live.load() == 2);
        REQUIRE(sub->End().ok());
        CHECK(Counted::live.load() == 1);  // dropped with the interpreter
      }
      GILGuard gil;
      CHECK(local.Get()->value == 1);  // the main one is untouched
      local.Reset();
      CHECK(local.Get() == nullptr);
      CHECK(Counted::live.load() == 0);
      local.GetOrCreate([&] { return Counted(100); });
      CHECK(Counted::live.load() == 1);
    }
    // Finalization dropped the main interpreter's value.
    CHECK(Counted::live.load() == 0);
    ScopedRuntime again(TestOptions());
    GILGuard gil;
    CHECK(local.Get() == nullptr);  // a new runtime starts empty
  }

  TEST_CASE("a cached Python object never crosses runtimes") {
    static InterpreterLocal<OwnedRef> dumps;
    for (int cycle = 0; cycle < 3; ++cycle) {
      ScopedRuntime runtime(TestOptions());
      GILGuard gil;
      PyObject* function =
          dumps
              .GetOrCreate([] {
                PyObject* json = PyImport_ImportModule("json");
                OwnedRef ref(PyObject_GetAttrString(json, "dumps"));
                Py_DECREF(json);
                return ref;
              })
              .get();
      PyObject* text = PyObject_CallFunction(function, "i", cycle);
      REQUIRE(text != nullptr);
      CHECK(std::string(PyUnicode_AsUTF8(text)) == std::to_string(cycle));
      Py_DECREF(text);
    }
  }

  TEST_CASE("created exactly once while the creator releases the GIL") {
    static InterpreterLocal<Counted> slow;
    ScopedRuntime runtime(TestOptions());
    std::atomic<int> makes{0};
    std::vector<std::thread> threads;
    std::vector<long> seen(4);
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        GILGuard gil;
        seen[t] = slow.GetOrCreate([&] {
                        ++makes;
                        // Releases the GIL, as an import may.
                        pyscope::Exec("import time\ntime.sleep(0.2)");
                        return Counted(7);
                      })
                      .value;
      });
    }
    for (auto& thread : threads) thread.join();
    CHECK(makes.load() == 1);
    for (long value : seen) CHECK(value == 7);
  }

  TEST_CASE("a throwing or recursive creator stores nothing") {
    static InterpreterLocal<Counted> local;
    ScopedRuntime runtime(TestOptions());
    GILGuard gil;
    CHECK_THROWS_AS(
        local.GetOrCreate([]() -> Counted { throw std::runtime_error("no"); }),
        std::runtime_error);
    CHECK(local.Get() == nullptr);
    bool recursive_refused = false;
    local.GetOrCreate([&] {
      try {
        local.GetOrCreate([] { return Counted(1); });
      } catch (const pyscope::Error& e) {
        recursive_refused =
            e.status().code() == absl::StatusCode::kFailedPrecondition;
      }
      return Counted(2);
    });
    CHECK(recursive_refused);
    CHECK(local.Get()->value == 2);
  }
}

}  // namespace
