#pragma once
// LineReader: newline-delimited records from a file descriptor, with a
// timeout so a streaming caller can flush a partial batch when input goes
// quiet (an interactive pipe) instead of waiting for a full one. One thread.

#include <string>

namespace embedstream::app {

class LineReader {
 public:
  enum class Status { kLine, kTimeout, kEof, kError };

  explicit LineReader(int fd) : fd_(fd) {}

  // Next line without its '\n' (and a trailing '\r'). timeout_ms < 0 waits
  // for ever. A last line without '\n' is returned before kEof.
  Status Next(std::string& line, int timeout_ms);
  const std::string& error() const { return error_; }

 private:
  int fd_;
  std::string buf_;
  size_t pos_ = 0;
  bool eof_ = false;
  std::string error_;
};

}  // namespace embedstream::app
