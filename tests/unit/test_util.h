#pragma once
// Helpers shared by the unit tests.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace embedstream::testing {

// The real model: $EMBEDSTREAM_MODEL_DIR (scripts/test.sh sets it), else the
// repository's models/all-MiniLM-L6-v2. Tests that need it fail, not skip,
// when it is absent: run scripts/fetch_model.sh.
inline std::filesystem::path ModelDir() {
  if (const char* env = std::getenv("EMBEDSTREAM_MODEL_DIR"); env != nullptr && *env != '\0') {
    return env;
  }
  return ES_DEFAULT_MODEL_DIR;
}

inline std::filesystem::path SourceDir() { return ES_SOURCE_DIR; }

// A fresh empty directory under the system temp dir, removed by the caller.
inline std::filesystem::path MakeTempDir(const std::string& tag) {
  std::string tmpl = (std::filesystem::temp_directory_path() / ("es-" + tag + "-XXXXXX")).string();
  char* made = ::mkdtemp(tmpl.data());
  return made != nullptr ? std::filesystem::path(made) : std::filesystem::path();
}

// Cosine similarity of two float vectors, accumulated in double.
inline double Cosine(const float* a, const float* b, size_t n) {
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < n; ++i) {
    dot += static_cast<double>(a[i]) * b[i];
    na += static_cast<double>(a[i]) * a[i];
    nb += static_cast<double>(b[i]) * b[i];
  }
  return dot / std::sqrt(na * nb);
}

// Sends `request` (raw HTTP) to 127.0.0.1:port and returns every byte the
// server answers until it closes (5 s receive timeout).
inline std::string RawHttpExchange(uint16_t port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{};
  tv.tv_sec = 5;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(request.size())) {
    char buf[8192];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;)
      out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

}  // namespace embedstream::testing
