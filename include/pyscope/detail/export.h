// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// PYSCOPE_API marks what the compiled core (libpyscope) exports: every
// class and function that the headers declare and src/ defines. The core
// is built with hidden visibility, so anything the headers use without this
// mark fails to link in pyscope's own build, not in a user's.

#ifndef PYSCOPE_DETAIL_EXPORT_H_
#define PYSCOPE_DETAIL_EXPORT_H_

#if defined(__GNUC__)
#define PYSCOPE_API __attribute__((visibility("default")))
#else
#define PYSCOPE_API
#endif

#endif  // PYSCOPE_DETAIL_EXPORT_H_
