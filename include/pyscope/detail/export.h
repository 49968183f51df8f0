// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// PYSCOPE_API marks what the compiled core (libpyscope) exports
// (visibility("default")): every class and function that the headers
// declare and src/ defines. The core is built with hidden visibility, so
// anything the headers use without this mark fails to link in pyscope's own
// build, not in a user's. Not for use in user code.

#ifndef PYSCOPE_DETAIL_EXPORT_H_
#define PYSCOPE_DETAIL_EXPORT_H_

#if defined(__GNUC__)
#define PYSCOPE_API __attribute__((visibility("default")))
#else
#define PYSCOPE_API
#endif

// Inlining hints for the guards: the nested case inline in the caller, the
// rest one call away, so that a nested guard costs no register spills.
#if defined(__GNUC__)
#define PYSCOPE_INTERNAL_ALWAYS_INLINE inline __attribute__((always_inline))
#define PYSCOPE_INTERNAL_NOINLINE __attribute__((noinline))
#else
#define PYSCOPE_INTERNAL_ALWAYS_INLINE inline
#define PYSCOPE_INTERNAL_NOINLINE
#endif

#endif  // PYSCOPE_DETAIL_EXPORT_H_
