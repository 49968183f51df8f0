#!/bin/sh
# Compiles every public header on its own with one compiler, as C++17 and
# C++20, with -Wall -Wextra -Wpedantic -Werror (and -Wthread-safety for
# clang). Complements the per-header Meson targets, which use the
# configured compiler.
#
# Usage: check_headers.sh <compiler> <include dir>[:<include dir>...]
#                         <header>[=<prelude>] ...
# A prelude is a header that must be included first (documented by that
# header). Compile flags for CPython and Abseil come from pkg-config
# (PKG_CONFIG_PATH chooses the CPython, as for the build).
set -u
compiler=$1
include_flags=
old_ifs=$IFS
IFS=:
for dir in $2; do include_flags="$include_flags -I$dir"; done
IFS=$old_ifs
shift 2

if ! command -v "$compiler" >/dev/null 2>&1; then
  echo "check_headers: $compiler not found" >&2
  exit 77  # skipped
fi
cflags=$(pkg-config --cflags python3-embed absl_status absl_statusor) || exit 1
extra=
case $("$compiler" --version 2>/dev/null | head -n 1) in
  *clang*) extra=-Wthread-safety ;;
esac

failed=0
checked=0
for entry in "$@"; do
  header=${entry%%=*}
  prelude=
  [ "$header" != "$entry" ] && prelude="#include <${entry#*=}>"
  for std in c++17 c++20; do
    checked=$((checked + 1))
    # shellcheck disable=SC2086  # $cflags, $extra, $include_flags: word lists
    if ! output=$(printf '%s\n#include "%s"\n#include "%s"\n' \
        "$prelude" "$header" "$header" |
        "$compiler" -x c++ -std=$std -fsyntax-only -Wall -Wextra \
          -Wpedantic -Werror $extra $include_flags $cflags - 2>&1); then
      failed=$((failed + 1))
      echo "FAIL $compiler -std=$std $header"
      echo "$output" | head -n 20
    else
      echo "ok   $compiler -std=$std $header"
    fi
  done
done
echo "check_headers: $compiler: $checked checked, $failed failed"
[ "$failed" -eq 0 ]
