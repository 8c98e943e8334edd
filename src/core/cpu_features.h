#pragma once
// What this CPU can do, read once at run time (cpuid + xgetbv), never assumed
// from the build flags. Thread-safe: the value is computed on first use.

#include <string>

namespace embedstream {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;
  bool avx512_vnni = false;
  bool avx512_bf16 = false;
  bool amx_bf16 = false;

  // "avx2 fma avx512f avx512bw avx512vl avx512_vnni avx512_bf16"
  std::string ToString() const;
};

const CpuFeatures& GetCpuFeatures();

}  // namespace embedstream
