#pragma once
// Scalar math written so that `#pragma omp simd` loops vectorise it in every
// ES_MULTIVERSION clone: forced inline, branch-free, no library calls.

#include <cstdint>
#include <cstring>

// Helpers are forced inline so each clone gets its own ISA's copy.
#define ES_INLINE inline __attribute__((always_inline))

namespace embedstream::model::kernels {

// exp(x) for x <= 0-ish ranges used by softmax: Cody-Waite reduction and a
// degree-6 polynomial, relative error < 2e-7, branch-free so it vectorises.
ES_INLINE float ExpFast(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  // n = round(x / ln2) via the 1.5 * 2^23 trick: no call, no branch.
  const float shifter = 12582912.0f;
  const float t = x * 1.44269504088896341f + shifter;
  const float n = t - shifter;
  const float r = x - n * 0.693145751953125f - n * 1.428606765330187e-06f;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  int32_t ti;
  std::memcpy(&ti, &t, sizeof(ti));
  // The low mantissa bits of t hold n (two's complement around 2^22).
  const int32_t bits = ((ti - 0x4B400000) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

// x * 0.5 * (1 + erf(x / sqrt 2)) with erf from Abramowitz & Stegun 7.1.26
// (absolute error < 1.5e-7), the GELU BERT uses.
ES_INLINE float GeluErfFast(float x) {
  const float z = x * 0.70710678118654752f;
  const float a = z < 0.0f ? -z : z;
  const float t = 1.0f / (1.0f + 0.3275911f * a);
  float p = 1.061405429f;
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  const float erf_abs = 1.0f - p * t * ExpFast(-a * a);
  const float erf = z < 0.0f ? -erf_abs : erf_abs;
  return 0.5f * x * (1.0f + erf);
}

// Round to nearest (ties to even) for |x| < 2^22, as a float.
ES_INLINE float RoundFast(float x) {
  const float shifter = 12582912.0f;  // 1.5 * 2^23
  return (x + shifter) - shifter;
}

}  // namespace embedstream::model::kernels
