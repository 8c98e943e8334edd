#pragma once
// Wall-clock seconds since the Unix epoch as a double (the seed 000 message
// formats carry timestamps this way, e.g. 1699123456.789).

#include <chrono>

namespace embedstream {

inline double UnixSeconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

}  // namespace embedstream
