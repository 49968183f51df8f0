// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// RunMain / RunMainInRuntime: -c, -m and scripts (also a directory with
// __main__.py) with an argv; exit codes as the python program's (SystemExit
// codes, uncaught exceptions, KeyboardInterrupt without killing the host, a
// missing file); the runtime finalized afterwards (non-daemon threads
// joined), or kept when running inside it. Runs that print are scenarios,
// so that their stdout and stderr are the child's.

#include <sys/stat.h>

#include <string>
#include <thread>

#include "absl/status/status.h"
#include "doctest/doctest.h"
#include "pyscope/pyscope.h"
#include "support/python_helpers.h"
#include "support/scenario.h"

namespace {

using pyscope::MainProgram;
using pyscope::RunMain;
using pyscope::RuntimeOptions;
using pyscope_test::ChildResult;
using pyscope_test::EvalString;
using pyscope_test::HasFact;
using pyscope_test::PrintFact;
using pyscope_test::RunScenario;

RuntimeOptions Quiet() { return pyscope_test::TestOptions(); }

void Report(const char* name, const absl::StatusOr<int>& code) {
  PrintFact(name, code.ok() ? std::to_string(*code)
                            : std::string(code.status().ToString()));
}

PYSCOPE_SCENARIO(RunMainCommands) {
  Report("argv", RunMain(MainProgram::Command(
                             "import sys\nprint('argv=' + repr(sys.argv))\n",
                             {"a", "b c"}),
                         Quiet()));
  Report("exit3",
         RunMain(MainProgram::Command("raise SystemExit(3)"), Quiet()));
  Report("exit_none",
         RunMain(MainProgram::Command("import sys; sys.exit()"), Quiet()));
  Report("exit_text",
         RunMain(MainProgram::Command("import sys; sys.exit('bye now')"),
                 Quiet()));
  Report("error",
         RunMain(MainProgram::Command("def f():\n    1/0\nf()"), Quiet()));
  Report("interrupt",
         RunMain(MainProgram::Command("raise KeyboardInterrupt"), Quiet()));
  // The python program's defaults: '' first on sys.path for -c.
  Report("python_preset",
         RunMain(MainProgram::Command(
             "import sys\nprint('path0=' + repr(sys.path[0]))")));
  PrintFact("host_alive", "yes");
  return 0;
}

PYSCOPE_SCENARIO(RunMainFilesAndModules) {
  const std::string dir = pyscope_test::MakeTempDir();
  pyscope_test::WriteFile(dir + "/tool.py",
                          "import sys\n"
                          "print('module_argv0=' + sys.argv[0])\n"
                          "print('module_args=' + repr(sys.argv[1:]))\n"
                          "print('module_name=' + __name__)\n");
  pyscope_test::WriteFile(dir + "/script.py",
                          "import sys, threading, time\n"
                          "print('script_file=' + __file__)\n"
                          "print('script_argv=' + repr(sys.argv))\n"
                          "print('script_path0=' + sys.path[0])\n"
                          "def late():\n"
                          "    time.sleep(0.2)\n"
                          "    print('thread_joined=yes', flush=True)\n"
                          "threading.Thread(target=late).start()\n");
  mkdir((dir + "/app").c_str(), 0700);
  pyscope_test::WriteFile(dir + "/app/__main__.py",
                          "print('package_main=ran')\n");
  RuntimeOptions with_dir = Quiet();
  with_dir.prepend_sys_path = {dir};
  Report("module", RunMain(MainProgram::Module("tool", {"-v", "x"}), with_dir));
  Report("no_module", RunMain(MainProgram::Module("no_such_tool"), Quiet()));
  MainProgram script = MainProgram::File(dir + "/script.py", {"1"});
  script.prepend_sys_path = true;
  Report("script", RunMain(script, Quiet()));
  Report("package", RunMain(MainProgram::File(dir + "/app"), Quiet()));
  Report("missing", RunMain(MainProgram::File(dir + "/missing.py"), Quiet()));
  PrintFact("dir", dir);
  return 0;
}

TEST_SUITE("run_main") {
  TEST_CASE("commands: argv and the python program's exit codes") {
    ChildResult child = RunScenario("RunMainCommands", absl::Seconds(60));
    REQUIRE_MESSAGE(child.ExitedWith(0), child.Describe());
    CHECK(HasFact(child, "argv=['-c', 'a', 'b c']"));
    CHECK(HasFact(child, "argv=0"));
    CHECK(HasFact(child, "exit3=3"));
    CHECK(HasFact(child, "exit_none=0"));
    CHECK(HasFact(child, "exit_text=1"));
    CHECK(child.err.find("bye now\n") != std::string::npos);
    CHECK(HasFact(child, "error=1"));
    CHECK(child.err.find("ZeroDivisionError") != std::string::npos);
    CHECK(child.err.find("in f") != std::string::npos);
    // Python would kill itself with SIGINT; the host lives on.
    CHECK(HasFact(child, "interrupt=130"));
    CHECK(child.err.find("KeyboardInterrupt") != std::string::npos);
    CHECK(HasFact(child, "path0=''"));
    CHECK(HasFact(child, "python_preset=0"));
    CHECK(HasFact(child, "host_alive=yes"));
  }

  TEST_CASE("modules, scripts and directories; threads joined at the end") {
    ChildResult child =
        RunScenario("RunMainFilesAndModules", absl::Seconds(60));
    REQUIRE_MESSAGE(child.ExitedWith(0), child.Describe());
    const std::string dir = pyscope_test::FactOf(child, "dir");
    CHECK(HasFact(child, "module_argv0=" + dir + "/tool.py"));
    CHECK(HasFact(child, "module_args=['-v', 'x']"));
    CHECK(HasFact(child, "module_name=__main__"));
    CHECK(HasFact(child, "module=0"));
    CHECK(HasFact(child, "no_module=1"));
    CHECK(child.err.find("No module named no_such_tool") != std::string::npos);
    CHECK(HasFact(child, "script_file=" + dir + "/script.py"));
    CHECK(HasFact(child, "script_argv=['" + dir + "/script.py', '1']"));
    CHECK(HasFact(child, "script_path0=" + dir));
    // RunMain returned after finalization joined the script's thread.
    CHECK(child.out.find("thread_joined=yes\nscript=0") != std::string::npos);
    CHECK(HasFact(child, "package_main=ran"));
    CHECK(HasFact(child, "package=0"));
    CHECK(HasFact(child, "missing=2"));
    CHECK(child.err.find("can't open file") != std::string::npos);
  }

  TEST_CASE("RunMainInRuntime keeps the runtime; RunMain refuses then") {
    pyscope::ScopedRuntime runtime(Quiet());
    {
      pyscope::GILGuard gil;
      pyscope::Exec("import sys\nsys.argv = ['host']");
    }
    CHECK(*pyscope::RunMainInRuntime(MainProgram::Command(
              "import sys\nseen = list(sys.argv)\nraise SystemExit(5)",
              {"x"})) == 5);
    CHECK(*pyscope::RunMainInRuntime(MainProgram::Command("value = 1")) == 0);
    absl::StatusOr<int> refused = RunMain(MainProgram::Command("pass"));
    CHECK(refused.status().code() == absl::StatusCode::kAlreadyExists);
    pyscope::GILGuard gil;
    CHECK(EvalString("repr(seen)") == "['-c', 'x']");
    CHECK(EvalString("repr(sys.argv)") == "['host']");  // restored
    CHECK(EvalString("repr(value)") == "1");            // __main__ kept it
  }

  TEST_CASE("RunMainInRuntime in a sub-interpreter, and without a runtime") {
    pyscope::ScopedRuntime runtime(Quiet());
    pyscope::SubInterpreter sub;
    std::thread worker([&] {
      pyscope::GILGuard gil(sub);
      CHECK(*pyscope::RunMainInRuntime(MainProgram::Command(
                "import sys\nin_sub = 1\nsys.exit(0 if 'pyscope_probe' not in "
                "globals() else 9)")) == 0);
      CHECK(EvalString("repr(in_sub)") == "1");
    });
    worker.join();
    pyscope::GILGuard gil;
    CHECK(EvalString("repr('in_sub' in globals())") == "False");
  }
}

}  // namespace
