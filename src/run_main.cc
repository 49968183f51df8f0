// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// RunMain / RunMainInRuntime (pyscope/run_main.h): what Py_RunMain does
// for -c, -m and a script (Modules/main.c: pymain_run_command,
// pymain_run_module, pymain_run_file, _Py_HandleSystemExit), on pyscope's
// runtime. Py_RunMain itself is not usable here: it finalizes on its own,
// bypassing the drain and the sub-interpreter ends, and after an uncaught
// KeyboardInterrupt it kills the process with SIGINT.

#include "pyscope/run_main.h"

#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "pyscope/error.h"
#include "pyscope/gil.h"

namespace pyscope {
namespace {

std::string Argv0(const MainProgram& program) {
  switch (program.kind) {
    case MainProgram::Kind::kCommand:
      return "-c";
    case MainProgram::Kind::kModule:
      return "-m";  // runpy replaces it with the module's path
    case MainProgram::Kind::kFile:
      break;
  }
  return program.target;
}

std::string CurrentDirectory() {
  char buffer[PATH_MAX];
  return getcwd(buffer, sizeof(buffer)) != nullptr ? buffer : "";
}

// A directory, or a zip archive: run its __main__ module, as python does.
bool IsDirectoryOrZip(const std::string& path) {
  struct stat info;
  if (::stat(path.c_str(), &info) != 0) return false;
  if (S_ISDIR(info.st_mode)) return true;
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return false;
  char magic[4] = {};
  const size_t got = std::fread(magic, 1, sizeof(magic), file);
  std::fclose(file);
  return got == sizeof(magic) && std::memcmp(magic, "PK\x03\x04", 4) == 0;
}

// What python puts first on sys.path for `program` (without -P / -I).
std::string PathZero(const MainProgram& program) {
  switch (program.kind) {
    case MainProgram::Kind::kCommand:
      return "";
    case MainProgram::Kind::kModule:
      return CurrentDirectory();
    case MainProgram::Kind::kFile:
      break;
  }
  if (IsDirectoryOrZip(program.target)) return program.target;
  char resolved[PATH_MAX];
  std::string path = realpath(program.target.c_str(), resolved) != nullptr
                         ? resolved
                         : program.target;
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

// Writes `text` to sys.stderr (C's stderr when there is none).
void WriteToStderr(PyObject* object) PYSCOPE_REQUIRES_GIL {
  PyObject* err = PySys_GetObject("stderr");  // borrowed
  if (err != nullptr && err != Py_None &&
      PyFile_WriteObject(object, err, Py_PRINT_RAW) == 0 &&
      PyFile_WriteString("\n", err) == 0) {
    return;
  }
  PyErr_Clear();
  PyObject* text = PyObject_Str(object);
  const char* utf8 = text != nullptr ? PyUnicode_AsUTF8(text) : nullptr;
  std::fprintf(stderr, "%s\n", utf8 != nullptr ? utf8 : "");
  Py_XDECREF(text);
  PyErr_Clear();
}

// The exit code for the raised exception, as _Py_HandleSystemExit and
// pymain_exit_err_print decide it; prints what python prints.
int ExitCodeOfRaised() PYSCOPE_REQUIRES_GIL {
  PyObject* exception = detail::compat::FetchRaisedException();
  if (exception == nullptr) return 1;
  if (PyErr_GivenExceptionMatches(exception, PyExc_SystemExit)) {
    int exit_code = 0;
    PyObject* code = PyObject_GetAttrString(exception, "code");
    if (code == nullptr) {
      PyErr_Clear();
    } else if (code != Py_None) {
      if (PyLong_Check(code)) {
        exit_code = static_cast<int>(PyLong_AsLong(code));
        if (PyErr_Occurred() != nullptr) {
          PyErr_Clear();
          exit_code = 1;
        }
      } else {
        WriteToStderr(code);
        exit_code = 1;
      }
    }
    Py_XDECREF(code);
    Py_DECREF(exception);
    return exit_code;
  }
  const bool interrupted =
      PyErr_GivenExceptionMatches(exception, PyExc_KeyboardInterrupt) != 0;
  detail::compat::RestoreRaisedException(exception);
  PyErr_Print();  // sys.excepthook; never SystemExit here
  return interrupted ? 128 + SIGINT : 1;
}

// runpy._run_module_as_main(name, alter_argv): pymain_run_module's call.
PyObject* RunModule(const std::string& name,
                    bool alter_argv) PYSCOPE_REQUIRES_GIL {
  PyObject* runpy = PyImport_ImportModule("runpy");
  if (runpy == nullptr) return nullptr;
  PyObject* result =
      PyObject_CallMethod(runpy, "_run_module_as_main", "sO", name.c_str(),
                          alter_argv ? Py_True : Py_False);
  Py_DECREF(runpy);
  return result;
}

// A script file in __main__, with __file__ set for the run, as
// _PyRun_SimpleFileObject does. Returns the result, or null with an
// exception; *cannot_open when the file could not be opened.
PyObject* RunScript(const std::string& path,
                    bool* cannot_open) PYSCOPE_REQUIRES_GIL {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    std::fprintf(stderr, "python: can't open file '%s': [Errno %d] %s\n",
                 path.c_str(), errno, std::strerror(errno));
    *cannot_open = true;
    return nullptr;
  }
  PyObject* main_module = PyImport_AddModule("__main__");  // borrowed
  if (main_module == nullptr) {
    std::fclose(file);
    return nullptr;
  }
  PyObject* globals = PyModule_GetDict(main_module);  // borrowed
  bool set_file = false;
  if (PyDict_GetItemString(globals, "__file__") == nullptr) {
    PyObject* name = PyUnicode_DecodeFSDefault(path.c_str());
    if (name == nullptr || PyDict_SetItemString(globals, "__file__", name) ||
        PyDict_SetItemString(globals, "__cached__", Py_None)) {
      Py_XDECREF(name);
      std::fclose(file);
      return nullptr;
    }
    Py_DECREF(name);
    set_file = true;
  }
  PyObject* result =
      PyRun_FileExFlags(file, path.c_str(), Py_file_input, globals, globals,
                        /*closeit=*/1, nullptr);
  if (set_file) {
    PyObject* raised = detail::compat::FetchRaisedException();
    if (PyDict_DelItemString(globals, "__file__") != 0) PyErr_Clear();
    if (PyDict_DelItemString(globals, "__cached__") != 0) PyErr_Clear();
    if (raised != nullptr) detail::compat::RestoreRaisedException(raised);
  }
  return result;
}

// Runs `program` in __main__ and returns its exit code.
int Execute(const MainProgram& program) PYSCOPE_REQUIRES_GIL {
  PyObject* result = nullptr;
  switch (program.kind) {
    case MainProgram::Kind::kCommand: {
      PyObject* main_module = PyImport_AddModule("__main__");  // borrowed
      if (main_module == nullptr) return ExitCodeOfRaised();
      PyObject* globals = PyModule_GetDict(main_module);
      result = PyRun_StringFlags(program.target.c_str(), Py_file_input, globals,
                                 globals, nullptr);
      break;
    }
    case MainProgram::Kind::kModule:
      result = RunModule(program.target, /*alter_argv=*/true);
      break;
    case MainProgram::Kind::kFile:
      if (IsDirectoryOrZip(program.target)) {
        result = RunModule("__main__", /*alter_argv=*/false);
      } else {
        bool cannot_open = false;
        result = RunScript(program.target, &cannot_open);
        if (cannot_open) return 2;
      }
      break;
  }
  if (result == nullptr) return ExitCodeOfRaised();
  Py_DECREF(result);
  return 0;
}

void Flush(const char* stream) PYSCOPE_REQUIRES_GIL {
  PyObject* file = PySys_GetObject(stream);  // borrowed
  if (file == nullptr || file == Py_None) return;
  PyObject* result = PyObject_CallMethod(file, "flush", nullptr);
  if (result == nullptr) PyErr_Clear();
  Py_XDECREF(result);
}

// Sets sys.argv and, when asked (or for a directory or zip, as python
// always does), sys.path[0] for the run; runs; puts both back.
int RunWithArgv(const MainProgram& program,
                bool prepend_path) PYSCOPE_REQUIRES_GIL {
  PyObject* argv = PyList_New(0);
  if (argv == nullptr) return ExitCodeOfRaised();
  std::vector<std::string> items = {Argv0(program)};
  items.insert(items.end(), program.args.begin(), program.args.end());
  for (const std::string& item : items) {
    PyObject* text = PyUnicode_DecodeFSDefault(item.c_str());
    if (text == nullptr || PyList_Append(argv, text) != 0) {
      Py_XDECREF(text);
      Py_DECREF(argv);
      return ExitCodeOfRaised();
    }
    Py_DECREF(text);
  }
  PyObject* previous_argv = PySys_GetObject("argv");  // borrowed
  Py_XINCREF(previous_argv);
  PySys_SetObject("argv", argv);
  Py_DECREF(argv);

  PyObject* path_entry = nullptr;
  PyObject* sys_path = PySys_GetObject("path");  // borrowed
  const bool directory = program.kind == MainProgram::Kind::kFile &&
                         IsDirectoryOrZip(program.target);
  if ((prepend_path || directory) && sys_path != nullptr &&
      PyList_Check(sys_path)) {
    path_entry = PyUnicode_DecodeFSDefault(PathZero(program).c_str());
    if (path_entry == nullptr || PyList_Insert(sys_path, 0, path_entry) != 0) {
      PyErr_Clear();
      Py_CLEAR(path_entry);
    }
  }

  const int exit_code = Execute(program);

  Flush("stdout");
  Flush("stderr");
  if (path_entry != nullptr) {
    sys_path = PySys_GetObject("path");
    if (sys_path != nullptr && PyList_Check(sys_path) &&
        PyList_GET_SIZE(sys_path) > 0 &&
        PyList_GET_ITEM(sys_path, 0) == path_entry) {
      PyList_SetSlice(sys_path, 0, 1, nullptr);
    }
    Py_DECREF(path_entry);
  }
  if (previous_argv != nullptr) {
    PySys_SetObject("argv", previous_argv);
    Py_DECREF(previous_argv);
  }
  if (PyErr_Occurred() != nullptr) PyErr_Clear();
  return exit_code;
}

}  // namespace

MainProgram MainProgram::Command(std::string code,
                                 std::vector<std::string> args) {
  MainProgram program;
  program.kind = Kind::kCommand;
  program.target = std::move(code);
  program.args = std::move(args);
  return program;
}

MainProgram MainProgram::Module(std::string name,
                                std::vector<std::string> args) {
  MainProgram program;
  program.kind = Kind::kModule;
  program.target = std::move(name);
  program.args = std::move(args);
  return program;
}

MainProgram MainProgram::File(std::string path, std::vector<std::string> args) {
  MainProgram program;
  program.kind = Kind::kFile;
  program.target = std::move(path);
  program.args = std::move(args);
  return program;
}

absl::StatusOr<int> RunMain(const MainProgram& program,
                            const RuntimeOptions& options) {
  const RuntimeState state = GetRuntimeState();
  if (state == RuntimeState::kRunning || state == RuntimeState::kFinalizing) {
    return absl::AlreadyExistsError(
        "pyscope::RunMain: a runtime is live in this process; use "
        "RunMainInRuntime to run in it");
  }
  RuntimeOptions with_argv = options;
  with_argv.argv = {Argv0(program)};
  with_argv.argv.insert(with_argv.argv.end(), program.args.begin(),
                        program.args.end());
  absl::StatusOr<std::unique_ptr<ScopedRuntime>> runtime =
      ScopedRuntime::Create(with_argv);
  if (!runtime.ok()) return runtime.status();
  const bool prepend = program.prepend_sys_path.value_or(
      options.preset == RuntimeOptions::Preset::kPython);
  int exit_code = 0;
  {
    GILGuard gil(std::nothrow);
    if (!gil.ok()) return gil.status();
    exit_code = RunWithArgv(program, prepend);
  }
  const absl::Status finalized = (*runtime)->Finalize();
  if (!finalized.ok()) {
    std::fprintf(stderr, "pyscope::RunMain: %s\n",
                 finalized.ToString().c_str());
    exit_code = 120;  // as Py_RunMain when Py_FinalizeEx fails
  }
  return exit_code;
}

absl::StatusOr<int> RunMainInRuntime(const MainProgram& program) {
  GILGuard gil(std::nothrow);
  if (!gil.ok()) return gil.status();
  return RunWithArgv(program, program.prepend_sys_path.value_or(false));
}

}  // namespace pyscope
