// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// RuntimeOptions::virtual_env: a venv made with the embedded Python's own
// interpreter, a package pip installed into it offline, imported from the
// embedded runtime.

#include <string>

#include "absl/strings/str_cat.h"
#include "doctest/doctest.h"
#include "pyscope/pyscope.h"
#include "support/python_helpers.h"
#include "support/subprocess.h"

#ifndef PYSCOPE_TEST_PYTHON
#error "PYSCOPE_TEST_PYTHON (the base interpreter's path) is set by meson"
#endif

namespace {

using pyscope::GILGuard;
using pyscope::RuntimeOptions;
using pyscope::ScopedRuntime;
using pyscope_test::ChildResult;
using pyscope_test::EvalBool;
using pyscope_test::EvalString;
using pyscope_test::RunChild;
using pyscope_test::TestOptions;

// Writes a wheel of a pure-Python package into `dir` (a wheel is a zip
// archive with a .dist-info directory; pip installs it without a build
// backend or a network).
constexpr char kMakeWheel[] = R"py(
import base64, hashlib, os, sys, zipfile
out = sys.argv[1]
name, version = 'pyscope_venv_probe', '1.0'
files = {
    name + '/__init__.py': 'MESSAGE = "installed in the venv"\n',
    name + '-1.0.dist-info/METADATA':
        'Metadata-Version: 2.1\nName: %s\nVersion: %s\n' % (name, version),
    name + '-1.0.dist-info/WHEEL':
        'Wheel-Version: 1.0\nGenerator: pyscope-test\n'
        'Root-Is-Purelib: true\nTag: py3-none-any\n',
}
record = []
for path, text in files.items():
    digest = base64.urlsafe_b64encode(
        hashlib.sha256(text.encode()).digest()).rstrip(b'=').decode()
    record.append('%s,sha256=%s,%d' % (path, digest, len(text.encode())))
record.append(name + '-1.0.dist-info/RECORD,,')
files[name + '-1.0.dist-info/RECORD'] = '\n'.join(record) + '\n'
wheel = os.path.join(out, '%s-%s-py3-none-any.whl' % (name, version))
with zipfile.ZipFile(wheel, 'w') as archive:
    for path, text in files.items():
        archive.writestr(path, text)
print(wheel)
)py";

std::string Run(const std::vector<std::string>& argv) {
  ChildResult child = RunChild(argv, absl::Seconds(180));
  REQUIRE_MESSAGE(child.ExitedWith(0), child.Describe());
  return child.out;
}

// A venv with the probe package installed by pip, made once per binary.
const std::string& ProbeVenv() {
  static const std::string* const venv = [] {
    const std::string dir = pyscope_test::MakeTempDir();
    const std::string env = dir + "/venv";
    Run({PYSCOPE_TEST_PYTHON, "-m", "venv", env});
    const std::string script = dir + "/make_wheel.py";
    pyscope_test::WriteFile(script, kMakeWheel);
    std::string wheel = Run({PYSCOPE_TEST_PYTHON, script, dir});
    while (!wheel.empty() && wheel.back() == '\n') wheel.pop_back();
    Run({env + "/bin/python", "-m", "pip", "install", "--no-index", "--no-deps",
         "--disable-pip-version-check", "--no-cache-dir", wheel});
    return new std::string(env);
  }();
  return *venv;
}

TEST_SUITE("venv") {
  TEST_CASE("a package pip installed into a venv imports from the runtime") {
    RuntimeOptions options = TestOptions();
    options.virtual_env = ProbeVenv();
    for (int cycle = 0; cycle < 2; ++cycle) {
      CAPTURE(cycle);
      ScopedRuntime runtime(options);
      GILGuard gil;
      pyscope::Exec("import os, sys, pyscope_venv_probe");
      CHECK(EvalString("pyscope_venv_probe.MESSAGE") ==
            "installed in the venv");
      // pip recorded the installation (importlib.metadata would find it; it
      // is not used here because it imports _datetime, which CPython 3.12
      // cannot import again after a re-initialization: docs/pitfalls.md).
      CHECK(EvalBool(
          "os.path.isfile(os.path.join(os.path.dirname(os.path.dirname("
          "pyscope_venv_probe.__file__)), "
          "'pyscope_venv_probe-1.0.dist-info', 'RECORD'))"));
      CHECK(EvalString("os.path.realpath(sys.prefix)") ==
            EvalString(absl::StrCat("os.path.realpath('", ProbeVenv(), "')")));
      CHECK(EvalBool("sys.prefix != sys.base_prefix"));
      // The module really comes from the venv's site-packages.
      CHECK(EvalBool(absl::StrCat(
          "os.path.realpath(pyscope_venv_probe.__file__).startswith("
          "os.path.realpath('",
          ProbeVenv(), "'))")));
      // Still isolated: no environment variables, no user site.
      CHECK(EvalBool("sys.flags.ignore_environment == 1"));
    }
  }

  TEST_CASE("a runtime after a venv one is not in the venv") {
    // CPython keeps the ended runtime's path configuration and would start
    // the next one with it; pyscope forgets it (compat::ForgetPathConfig).
    {
      RuntimeOptions options = TestOptions();
      options.virtual_env = ProbeVenv();
      ScopedRuntime in_venv(options);
    }
    ScopedRuntime runtime(TestOptions());
    GILGuard gil;
    pyscope::Exec("import sys");
    CHECK(EvalBool("sys.prefix == sys.base_prefix"));
    CHECK(EvalString("sys.executable").find(ProbeVenv()) == std::string::npos);
    CHECK(pyscope::TryExec("import pyscope_venv_probe")
              .message()
              .find("ModuleNotFoundError") != std::string::npos);
  }

  TEST_CASE("a directory without pyvenv.cfg is kNotFound naming the path") {
    RuntimeOptions options = TestOptions();
    options.virtual_env = pyscope_test::MakeTempDir();
    auto status = ScopedRuntime::Create(options).status();
    CHECK(status.code() == absl::StatusCode::kNotFound);
    CHECK(status.message().find(options.virtual_env + "/pyvenv.cfg") !=
          std::string::npos);
  }

  TEST_CASE("a venv of another Python version is kFailedPrecondition") {
    RuntimeOptions options = TestOptions();
    options.virtual_env = pyscope_test::MakeTempDir();
    pyscope_test::WriteFile(options.virtual_env + "/pyvenv.cfg",
                            "home = /opt/python2/bin\nversion = 2.7.18\n");
    auto status = ScopedRuntime::Create(options).status();
    CHECK(status.code() == absl::StatusCode::kFailedPrecondition);
    CHECK(status.message().find("2.7.18") != std::string::npos);
    CHECK_FALSE(Py_IsInitialized());
  }

  TEST_CASE("virtual_env with home or module_search_paths is refused") {
    RuntimeOptions options = TestOptions();
    options.virtual_env = "/nonexistent";
    options.home = "/usr";
    CHECK(ScopedRuntime::Create(options).status().code() ==
          absl::StatusCode::kInvalidArgument);
    options.home.clear();
    options.import_site = false;
    CHECK(ScopedRuntime::Create(options).status().code() ==
          absl::StatusCode::kInvalidArgument);
  }
}

}  // namespace
