#pragma once
// The machine's physical limit: peak arithmetic throughput of the widest
// f32 FMA and int8 dot-product instructions this CPU has, measured by
// register-only loops (independent accumulator chains, no memory traffic)
// on every thread at once. What no kernel can beat.

#include <string>

namespace embedstream::bench {

struct Peak {
  double gops = 0;          // 10^9 arithmetic operations per second (a MAC = 2)
  std::string instruction;  // e.g. "vfmadd231ps zmm", "vpdpbusd zmm"
};

Peak MeasureF32FmaPeak(int threads, double seconds);
Peak MeasureInt8DotPeak(int threads, double seconds);

}  // namespace embedstream::bench
