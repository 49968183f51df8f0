// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// pyscope: the CPython embedding rules as C++ scopes. Includes every public
// header except the opt-in pyscope/checked_api.h and pyscope/testing.h. See
// docs/guide.md.
//
// Python.h is included through pyscope/detail/compat.h, with
// PY_SSIZE_T_CLEAN defined; compilation fails with #error for a CPython
// older than 3.9.

#ifndef PYSCOPE_PYSCOPE_H_
#define PYSCOPE_PYSCOPE_H_

#include "pyscope/annotations.h"
#include "pyscope/deadline.h"
#include "pyscope/diagnostics.h"
#include "pyscope/error.h"
#include "pyscope/exec.h"
#include "pyscope/exit_hooks.h"
#include "pyscope/fork.h"
#include "pyscope/gil.h"
#include "pyscope/host_options.h"
#include "pyscope/interpreter_local.h"
#include "pyscope/interpreter_view.h"
#include "pyscope/interrupt.h"
#include "pyscope/introspection.h"
#include "pyscope/main_thread.h"
#include "pyscope/output.h"
#include "pyscope/run_main.h"
#include "pyscope/runtime.h"
#include "pyscope/source_location.h"
#include "pyscope/sub_interpreter.h"
#include "pyscope/thread_dict.h"
#include "pyscope/thread_state_swap.h"
#include "pyscope/trace.h"
#include "pyscope/version.h"

#endif  // PYSCOPE_PYSCOPE_H_
