// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// The initialization step behind InterruptMainThread (pyscope/interrupt.h).

#ifndef PYSCOPE_SRC_INTERRUPT_SETUP_H_
#define PYSCOPE_SRC_INTERRUPT_SETUP_H_

#include "absl/status/status.h"
#include "pyscope/annotations.h"

namespace pyscope::detail {

// Registers the Python-level handler of the interrupt signal and puts the
// signal's disposition back as it was. On the initializing thread (CPython's
// main thread), with the GIL held, after the signal module is initialized.
absl::Status PrepareInterruptSignal() PYSCOPE_REQUIRES_GIL;

// Forgets it (finalization, or an adopted runtime: nothing to simulate).
void ForgetInterruptSignal();

}  // namespace pyscope::detail

#endif  // PYSCOPE_SRC_INTERRUPT_SETUP_H_
