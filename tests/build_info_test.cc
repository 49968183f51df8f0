// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Which CPython (src/build_info.cc): the CPython recorded by the build
// against the one the process loaded. The comparison is tested with made-up
// identities; the real check in this process, and in a child process that
// preloads another libpython of the same minor version (a system copy for a
// pyenv build, a pyenv copy for a system build), when one is installed.

#include "build_info.h"

#include <glob.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "doctest/doctest.h"
#include "pyscope_build_config.h"
#include "support/python_helpers.h"
#include "support/scenario.h"

namespace {

using pyscope::detail::BuiltLibpython;
using pyscope::detail::CheckLoadedLibpython;
using pyscope::detail::CompareLibpython;
using pyscope::detail::LibpythonIdentity;
using pyscope::detail::LoadedLibpython;
using pyscope_test::ChildResult;
using pyscope_test::RunScenario;

std::string Resolved(const std::string& path) {
  char buffer[PATH_MAX];
  return ::realpath(path.c_str(), buffer) != nullptr ? buffer : path;
}

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Installed libpython files of this minor version other than the one
// pyscope was built with: /usr/lib's for a private build, pyenv's for the
// system's.
std::vector<std::string> OtherLibpythons() {
  const std::string soname = absl::StrCat("libpython", PY_MAJOR_VERSION, ".",
                                          PY_MINOR_VERSION, ".so.1.0");
  std::vector<std::string> patterns = {"/usr/lib/*/" + soname,
                                       "/usr/lib/" + soname};
  const char* pyenv_root = std::getenv("PYENV_ROOT");
  const char* home = std::getenv("HOME");
  const std::string root = pyenv_root != nullptr ? pyenv_root
                           : home != nullptr     ? std::string(home) + "/.pyenv"
                                                 : "";
  if (!root.empty()) {
    patterns.push_back(absl::StrCat(root, "/versions/", PY_MAJOR_VERSION, ".",
                                    PY_MINOR_VERSION, ".*/lib/", soname));
  }
  const std::string built = Resolved(BuiltLibpython().library);
  std::vector<std::string> found;
  for (const std::string& pattern : patterns) {
    glob_t matches;
    if (::glob(pattern.c_str(), 0, nullptr, &matches) == 0) {
      for (size_t i = 0; i < matches.gl_pathc; ++i) {
        const std::string path = matches.gl_pathv[i];
        if (Resolved(path) != built) found.push_back(path);
      }
    }
    ::globfree(&matches);
  }
  return found;
}

PYSCOPE_SCENARIO(CheckLoadedLibpythonPrints) {
  const absl::Status status = CheckLoadedLibpython();
  std::printf("code=%d\nmessage=%s\n", static_cast<int>(status.code()),
              std::string(status.message()).c_str());
  return 0;
}

PYSCOPE_SCENARIO(ScopedRuntimeOnLoadedLibpython) {
  auto runtime = pyscope::ScopedRuntime::Create(pyscope_test::TestOptions());
  std::printf("code=%d\nmessage=%s\n",
              static_cast<int>(runtime.status().code()),
              std::string(runtime.status().message()).c_str());
  return 0;
}

TEST_SUITE("build_info") {
  TEST_CASE("the build recorded the CPython of its headers") {
    const LibpythonIdentity built = BuiltLibpython();
    CHECK(built.version == PY_VERSION);
    CHECK(built.version == PYSCOPE_BUILD_PYTHON_VERSION);
    if (!built.library.empty()) {
      CHECK(::access(built.library.c_str(), R_OK) == 0);
      CHECK(Contains(built.library, absl::StrCat("libpython", PY_MAJOR_VERSION,
                                                 ".", PY_MINOR_VERSION)));
    }
  }

  TEST_CASE("this test process loaded that CPython, so the check passes") {
    const LibpythonIdentity built = BuiltLibpython();
    const LibpythonIdentity loaded = LoadedLibpython();
    INFO("built ", built.version, " ", built.library, "; loaded ",
         loaded.version, " ", loaded.library);
    CHECK(loaded.version == PY_VERSION);
    REQUIRE(!loaded.library.empty());
    if (!built.library.empty()) {
      CHECK(Resolved(loaded.library) == Resolved(built.library));
    }
    const absl::Status status = CheckLoadedLibpython();
    CHECK_MESSAGE(status.ok(), status.ToString());
  }

  TEST_CASE("another version is refused, naming both") {
    const absl::Status status = CompareLibpython(
        {"3.11.7", "/opt/pyenv/versions/3.11.7/lib/libpython3.11.so"},
        {"3.11.2", "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0"},
        /*compare_library=*/true);
    CHECK(status.code() == absl::StatusCode::kFailedPrecondition);
    const std::string message(status.message());
    CHECK(Contains(message,
                   "built against CPython 3.11.7 "
                   "(/opt/pyenv/versions/3.11.7/lib/libpython3.11.so)"));
    CHECK(Contains(message,
                   "loaded CPython 3.11.2 "
                   "(/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0)"));
    // Without the file comparison the version still decides.
    CHECK(CompareLibpython({"3.11.7", ""}, {"3.11.2", ""}, false).code() ==
          absl::StatusCode::kFailedPrecondition);
  }

  TEST_CASE(
      "the same version from another file is refused unless only "
      "versions are compared") {
    const std::string built = BuiltLibpython().library;
    if (built.empty()) {
      MESSAGE("this CPython has no shared library file; nothing to compare");
      return;
    }
    const LibpythonIdentity recorded{PY_VERSION, built};
    const LibpythonIdentity other{PY_VERSION, "/bin/sh"};
    const absl::Status status = CompareLibpython(recorded, other, true);
    CHECK(status.code() == absl::StatusCode::kFailedPrecondition);
    CHECK(Contains(std::string(status.message()), "another installation"));
    CHECK(Contains(std::string(status.message()), "/bin/sh"));
    CHECK(CompareLibpython(recorded, other, false).ok());
    // An unknown file on either side compares the version only.
    CHECK(CompareLibpython(recorded, {PY_VERSION, ""}, true).ok());
    CHECK(CompareLibpython({PY_VERSION, ""}, other, true).ok());
  }

  TEST_CASE("a symbolic link to the recorded file is the same library") {
    const std::string built = BuiltLibpython().library;
    if (built.empty()) {
      MESSAGE("this CPython has no shared library file; nothing to compare");
      return;
    }
    const std::string dir = pyscope_test::MakeTempDir();
    const std::string link = dir + "/libpython-link.so";
    REQUIRE(::symlink(Resolved(built).c_str(), link.c_str()) == 0);
    CHECK(CompareLibpython({PY_VERSION, built}, {PY_VERSION, link}, true).ok());
    ::unlink(link.c_str());
    ::rmdir(dir.c_str());
  }

  TEST_CASE(
      "a process that loaded another libpython of this minor version "
      "is refused") {
    const std::vector<std::string> others = OtherLibpythons();
    if (others.empty()) {
      MESSAGE("no other libpython", PY_MAJOR_VERSION, ".", PY_MINOR_VERSION,
              " installed; nothing to preload");
      return;
    }
    for (const std::string& other : others) {
      // The preloaded library has the same SONAME, so the loader uses it
      // for this binary's libpython dependency: the situation of a program
      // that finds the wrong copy first.
      ChildResult child =
          RunScenario("CheckLoadedLibpythonPrints", absl::Seconds(20),
                      {"LD_PRELOAD=" + other});
      INFO(child.Describe());
      REQUIRE(child.ExitedWith(0));
      const bool same_version =
          Contains(child.out, "loaded CPython " PY_VERSION " ");
      if (same_version && PYSCOPE_BUILD_CHECK_LIBRARY_FILE == 0) {
        CHECK(Contains(child.out, "code=0\n"));
        continue;
      }
      CHECK(Contains(child.out, "code=9\n"));  // kFailedPrecondition
      CHECK(Contains(child.out, "built against CPython " PY_VERSION " ("));
      CHECK(Contains(child.out, "loaded CPython "));
      CHECK(Contains(child.out, other));
    }
  }

  TEST_CASE("ScopedRuntime refuses to start on another libpython") {
    const std::vector<std::string> others = OtherLibpythons();
    if (others.empty()) {
      MESSAGE("no other libpython installed; nothing to preload");
      return;
    }
    ChildResult child =
        RunScenario("ScopedRuntimeOnLoadedLibpython", absl::Seconds(20),
                    {"LD_PRELOAD=" + others.front()});
    INFO(child.Describe());
    REQUIRE(child.ExitedWith(0));
    if (PYSCOPE_BUILD_CHECK_LIBRARY_FILE == 0 &&
        Contains(child.out, "loaded CPython " PY_VERSION " ")) {
      return;
    }
    CHECK(Contains(child.out, "code=9\n"));
    CHECK(Contains(child.out, "built against CPython " PY_VERSION " ("));
    CHECK(Contains(child.out, others.front()));
  }
}

}  // namespace
