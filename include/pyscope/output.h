// Copyright 2026 The pyscope Authors.
// SPDX-License-Identifier: Apache-2.0
//
// Output capture: Python's sys.stdout and sys.stderr routed into C++, for a
// whole interpreter (OutputCapture) or for what one native thread's Python
// code writes (ThreadOutputCapture).
//
//   // Everything the plugin's interpreter prints goes to the host's log.
//   pyscope::OutputCapture log(pyscope::InterpreterView::Of(plugin),
//       [](pyscope::OutputStream stream, std::string_view text) {
//         host_log.Append(stream == pyscope::OutputStream::kStderr, text);
//       });
//
//   // Only this callback's output, even with other threads printing at
//   // the same time in the same interpreter:
//   pyscope::GILGuard gil;
//   pyscope::ThreadOutputCapture mine;
//   pyscope::Exec("print('hello')");
//   assert(mine.text(pyscope::OutputStream::kStdout) == "hello\n");
//
// How: the interpreter's sys.stdout / sys.stderr become pyscope writer
// objects while a capture is active. A writer sends each write() to the
// innermost ThreadOutputCapture of the writing thread for that
// interpreter, else to the newest OutputCapture of the interpreter, else to
// the stream it replaced. print(), sys.stdout.write(), PyErr_Print's
// tracebacks, warnings and logging's default handler (logging.lastResort,
// and basicConfig handlers) all arrive. When the last capture of an
// interpreter ends, the previous streams are put back (unless Python code
// replaced sys.stdout meanwhile: then it keeps its own); a writer object
// that code still holds (a logging handler made during the capture) then
// forwards to the previous stream.
//
// The sink is called on the writing thread, with the GIL of the writing
// interpreter held, once per write() call (print("a", "b") is several
// writes: "a", " ", "b", "\n"), with the text as UTF-8 (unencodable
// characters backslash-escaped). It must not block for long and must not
// start or end the capture it belongs to. An exception it throws becomes a
// RuntimeError in the writing Python code.

#ifndef PYSCOPE_OUTPUT_H_
#define PYSCOPE_OUTPUT_H_

#include <atomic>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "pyscope/annotations.h"
#include "pyscope/detail/export.h"
#include "pyscope/detail/stack_only.h"
#include "pyscope/interpreter_view.h"

namespace pyscope {

enum class OutputStream { kStdout, kStderr };

// Receives captured text (see the file comment for when and how).
using OutputSink =
    std::function<void(OutputStream stream, std::string_view text)>;

namespace detail {
// One capture's sink, or its collected text (src/output.cc).
class CaptureSink;
}  // namespace detail

// Captures sys.stdout and sys.stderr of one interpreter (main or sub) for
// the object's lifetime: from construction until Stop() or destruction.
// Not copyable or movable; keep it on the stack, as a member, or in a
// std::unique_ptr (Create). Construction, Stop() and destruction attach to
// the interpreter by themselves, from any thread (the caller may hold the
// GIL of any interpreter, or none).
//
// Captures of one interpreter stack: the newest active one receives the
// output; when it stops, the one before receives it again.
class PYSCOPE_API OutputCapture {
 public:
  // Sends the output of `interpreter` to `sink`. Throws pyscope::Error with
  // the status Create returns.
  OutputCapture(const InterpreterView& interpreter, OutputSink sink);
  // Collects the output of `interpreter`; read it with text().
  explicit OutputCapture(const InterpreterView& interpreter);

  // Non-throwing form; a null `sink` collects. The status is the
  // attachment's (see InterpreterView), or kInternal when the streams
  // cannot be replaced.
  static absl::StatusOr<std::unique_ptr<OutputCapture>> Create(
      const InterpreterView& interpreter, OutputSink sink = nullptr);

  OutputCapture(const OutputCapture&) = delete;
  OutputCapture& operator=(const OutputCapture&) = delete;

  // Stop().
  ~OutputCapture();

  // Stops capturing: once it returns, the sink is never called again (a
  // call in progress on another thread is waited for). Puts the previous
  // streams back if this was the interpreter's last capture. If the
  // interpreter has ended or the runtime finalized, there is nothing to put
  // back and it returns OK; while the interpreter is ending or the runtime
  // is finalizing it returns kUnavailable (the sink is detached all the
  // same). Idempotent; thread-safe.
  absl::Status Stop();

  // The text collected so far on `stream` (collecting captures only; empty
  // for a capture with a sink). Thread-safe.
  std::string text(OutputStream stream) const;

 private:
  OutputCapture() = default;
  absl::Status Start(const InterpreterView& interpreter, OutputSink sink);

  InterpreterView interpreter_;
  std::shared_ptr<detail::CaptureSink> sink_;
  std::atomic<bool> started_{false};
};

// Captures what Python code running on the calling thread writes to
// sys.stdout / sys.stderr of the interpreter it is attached to, for the
// scope: output of other threads (also in the same interpreter, at the same
// time) is not captured, and code this thread runs in another interpreter
// inside the scope is not either. Python threads that the code starts are
// other threads. Scopes nest on a thread; the innermost receives.
//
// Stack-only. Precondition: the calling thread holds the GIL (construct it
// inside a GILGuard scope and let it end before the guard does).
class [[nodiscard]] ThreadOutputCapture {
  PYSCOPE_INTERNAL_STACK_ONLY(ThreadOutputCapture)

 public:
  // Sends this thread's output to `sink`. Throws pyscope::Error (no GIL:
  // kFailedPrecondition; streams that cannot be replaced: kInternal).
  [[nodiscard]] PYSCOPE_API explicit ThreadOutputCapture(OutputSink sink)
      PYSCOPE_REQUIRES_GIL;
  // Collects this thread's output; read it with text().
  [[nodiscard]] PYSCOPE_API ThreadOutputCapture() PYSCOPE_REQUIRES_GIL;
  // Non-throwing forms: check ok(); when !ok() nothing is captured.
  [[nodiscard]] PYSCOPE_API ThreadOutputCapture(
      OutputSink sink, const std::nothrow_t&) PYSCOPE_REQUIRES_GIL;
  [[nodiscard]] PYSCOPE_API explicit ThreadOutputCapture(const std::nothrow_t&)
      PYSCOPE_REQUIRES_GIL;

  // Ends the capture; puts the previous streams back if it was the
  // interpreter's last one. Requires the GIL, as the constructor did.
  PYSCOPE_API ~ThreadOutputCapture();

  bool ok() const noexcept { return status_.ok(); }
  const absl::Status& status() const noexcept { return status_; }

  // The text collected so far on `stream` (collecting captures only).
  PYSCOPE_API std::string text(OutputStream stream) const;

 private:
  void Start(OutputSink sink);

  std::shared_ptr<detail::CaptureSink> sink_;
  void* entry_ = nullptr;  // this scope's entry in the thread's list
  absl::Status status_;
};

}  // namespace pyscope

#endif  // PYSCOPE_OUTPUT_H_
