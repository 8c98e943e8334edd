#include "app/line_reader.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace embedstream::app {

LineReader::Status LineReader::Next(std::string& line, int timeout_ms) {
  for (;;) {
    const size_t nl = buf_.find('\n', pos_);
    if (nl != std::string::npos || (eof_ && pos_ < buf_.size())) {
      const size_t end = nl == std::string::npos ? buf_.size() : nl;
      line.assign(buf_, pos_, end - pos_);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      pos_ = nl == std::string::npos ? buf_.size() : nl + 1;
      return Status::kLine;
    }
    if (eof_) return Status::kEof;
    if (pos_ > 0) {  // keep only the unfinished tail
      buf_.erase(0, pos_);
      pos_ = 0;
    }
    pollfd pfd{fd_, POLLIN, 0};
    const int pr = ::poll(&pfd, 1, timeout_ms);
    if (pr == 0) return Status::kTimeout;
    if (pr < 0) {
      if (errno == EINTR) continue;
      error_ = std::strerror(errno);
      return Status::kError;
    }
    char chunk[1 << 16];
    const ssize_t n = ::read(fd_, chunk, sizeof(chunk));
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      error_ = std::strerror(errno);
      return Status::kError;
    }
    if (n == 0) {
      eof_ = true;
    } else {
      buf_.append(chunk, static_cast<size_t>(n));
    }
  }
}

}  // namespace embedstream::app
