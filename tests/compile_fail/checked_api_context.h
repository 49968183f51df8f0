// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// The three contexts every checked_api_*.cc test compiles a C API call in.
// `PYSCOPE_CF_CONTEXT;` at the top of the test function opens:
//   (control)          a GILGuard: the call must compile;
//   PYSCOPE_CF_NO_GUARD       nothing: the call must be rejected;
//   PYSCOPE_CF_ALLOW_THREADS  a GILGuard, then an AllowThreads: rejected.
// The guards must be in the test function's own scope, because Clang's
// analysis is per function; hence a macro rather than a helper function.

#ifndef PYSCOPE_TESTS_COMPILE_FAIL_CHECKED_API_CONTEXT_H_
#define PYSCOPE_TESTS_COMPILE_FAIL_CHECKED_API_CONTEXT_H_

#include "pyscope/checked_api.h"
#include "pyscope/gil.h"

#if defined(PYSCOPE_COMPILE_FAIL_CONTROL)
#define PYSCOPE_CF_CONTEXT ::pyscope::GILGuard cf_gil
#elif defined(PYSCOPE_CF_ALLOW_THREADS)
#define PYSCOPE_CF_CONTEXT    \
  ::pyscope::GILGuard cf_gil; \
  ::pyscope::AllowThreads cf_nogil
#elif defined(PYSCOPE_CF_NO_GUARD)
#define PYSCOPE_CF_CONTEXT static_cast<void>(0)
#else
#error \
    "compile with -DPYSCOPE_COMPILE_FAIL_CONTROL, -DPYSCOPE_CF_NO_GUARD or -DPYSCOPE_CF_ALLOW_THREADS"
#endif

#endif  // PYSCOPE_TESTS_COMPILE_FAIL_CHECKED_API_CONTEXT_H_
