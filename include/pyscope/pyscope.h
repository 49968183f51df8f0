// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// pyscope: the CPython embedding rules as C++ scopes. Includes every public
// header. See docs/guide.md.

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
