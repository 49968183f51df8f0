// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Which CPython this copy of pyscope was built against, and the check that
// the process loaded that one.
//
// A program built against one CPython can run on another one of the same
// minor version without any error from the dynamic loader: both libraries
// have the SONAME libpython3.X.so.1.0, so whichever the loader finds first
// (a system /usr/lib copy before a pyenv or conda one without a run path)
// is used. The headers it was compiled with then describe structures of a
// different build. ScopedRuntime refuses to start in that case, naming both.

#ifndef PYSCOPE_SRC_BUILD_INFO_H_
#define PYSCOPE_SRC_BUILD_INFO_H_

#include <string>

#include "absl/status/status.h"

namespace pyscope::detail {

// A CPython library as pyscope identifies it.
struct LibpythonIdentity {
  // CPython's version, "3.12.1" (PY_VERSION; Py_GetVersion() up to its
  // first space).
  std::string version;
  // The shared library file; empty when unknown (a CPython linked
  // statically, or dladdr could not tell).
  std::string library;
};

// The CPython pyscope was compiled against: PY_VERSION of its headers, and
// the libpython file the build linked (recorded by Meson; see meson.build).
LibpythonIdentity BuiltLibpython();

// The CPython loaded in this process: Py_GetVersion(), and the file that
// holds it (dladdr on Py_GetVersion's static buffer, which lives inside
// libpython whatever the executable's relocations do with function
// addresses). Safe before Py_Initialize: Py_GetVersion is one of the
// functions CPython allows before initialization.
LibpythonIdentity LoadedLibpython();

// OK when `loaded` is `built`: the same version and, if `compare_library`
// and both library paths are known, the same file after resolving symbolic
// links. Otherwise kFailedPrecondition naming both and what to do.
absl::Status CompareLibpython(const LibpythonIdentity& built,
                              const LibpythonIdentity& loaded,
                              bool compare_library);

// CompareLibpython(BuiltLibpython(), LoadedLibpython(), ...) with the
// library comparison the build chose (-Dlibpython_check=full, the default,
// or version). Computed once per process; thread-safe. Called by
// ScopedRuntime before it initializes Python (not when it adopts a
// runtime the host started: the host chose that CPython).
absl::Status CheckLoadedLibpython();

}  // namespace pyscope::detail

#endif  // PYSCOPE_SRC_BUILD_INFO_H_
