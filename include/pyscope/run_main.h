// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// RunMain: run a command, a module or a file with an argv as the `python`
// program does (Py_RunMain's semantics), and get its exit code back instead
// of having the process exit.
//
//   int main(int argc, char** argv) {
//     absl::StatusOr<int> code = pyscope::RunMain(
//         pyscope::MainProgram::Module("http.server", {"8000"}));
//     return code.ok() ? *code : 1;
//   }
//
// The exit code is the python program's: 0 when the code ends normally;
// SystemExit's code (None: 0, an int: that int, anything else: printed to
// sys.stderr, 1) — the host process never exits; 1 after another uncaught
// exception, whose traceback is printed through sys.excepthook; 130
// (128 + SIGINT) after an uncaught KeyboardInterrupt, where the python
// program would kill itself with SIGINT; 2 when the file cannot be opened;
// 120 when finalizing Python failed (as Py_RunMain).

#ifndef PYSCOPE_RUN_MAIN_H_
#define PYSCOPE_RUN_MAIN_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "pyscope/detail/export.h"
#include "pyscope/runtime.h"

namespace pyscope {

// What to run, as `python -c CODE ARGS...`, `python -m NAME ARGS...` or
// `python PATH ARGS...`.
struct PYSCOPE_API MainProgram {
  enum class Kind { kCommand, kModule, kFile };

  static MainProgram Command(std::string code,
                             std::vector<std::string> args = {});
  static MainProgram Module(std::string name,
                            std::vector<std::string> args = {});
  // A script, or a directory or zip file with a __main__.py.
  static MainProgram File(std::string path, std::vector<std::string> args = {});

  Kind kind = Kind::kCommand;
  std::string target;             // the code, the module name or the path
  std::vector<std::string> args;  // sys.argv[1:]

  // Whether to put what the python program puts first on sys.path: the
  // script's directory (kFile), the current directory (kModule), "" (the
  // current directory, kCommand). Unset: RunMain does it for
  // RuntimeOptions::Preset::kPython (like python) and not for kIsolated
  // (like python -I); RunMainInRuntime does not.
  std::optional<bool> prepend_sys_path;
};

// Starts a runtime from `options` (sys.argv from `program`; options.argv is
// ignored), runs `program` in __main__ on the calling thread, finalizes the
// runtime as Py_RunMain does (joining non-daemon Python threads), and
// returns the exit code (see the file comment).
//
// Errors (nothing ran): the runtime's own (a configuration error;
// kAlreadyExists when a runtime is live: use RunMainInRuntime).
PYSCOPE_API absl::StatusOr<int> RunMain(
    const MainProgram& program,
    const RuntimeOptions& options = RuntimeOptions::Python());

// Runs `program` in the running runtime, without finalizing it: in the
// __main__ module of the interpreter the calling thread is attached to
// (else the main one), on the calling thread, with sys.argv set for the run
// and restored afterwards (as is sys.path's first entry, when added).
// Python threads the code starts are not joined; __main__ keeps what the
// code defined. Returns the exit code.
//
// Errors (nothing ran): the GILGuard's (kFailedPrecondition without a
// runtime, kUnavailable while it finalizes).
PYSCOPE_API absl::StatusOr<int> RunMainInRuntime(const MainProgram& program);

}  // namespace pyscope

#endif  // PYSCOPE_RUN_MAIN_H_
