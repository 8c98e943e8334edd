#include "encoder/peak.h"

#include <immintrin.h>
#include <omp.h>

#include <chrono>
#include <cstdint>

#include "core/cpu_features.h"

namespace embedstream::bench {
namespace {

constexpr long kIterations = 1L << 22;  // per timed call, per thread

// Each loop body: kChains independent accumulators, so the instruction's
// throughput, not its latency, bounds the loop. Returns something derived
// from the accumulators so the compiler keeps the work.
constexpr int kChains = 12;

__attribute__((target("avx512f"))) float FmaZmm(long n, float seed) {
  __m512 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_ps(seed + static_cast<float>(c));
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (long i = 0; i < n; ++i) {
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
  }
  __m512 s = acc[0];
  for (int c = 1; c < kChains; ++c) s = _mm512_add_ps(s, acc[c]);
  float out[16];
  _mm512_storeu_ps(out, s);
  return out[0] + out[15];
}

__attribute__((target("avx2,fma"))) float FmaYmm(long n, float seed) {
  __m256 acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm256_set1_ps(seed + static_cast<float>(c));
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (long i = 0; i < n; ++i) {
    for (int c = 0; c < kChains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
  }
  __m256 s = acc[0];
  for (int c = 1; c < kChains; ++c) s = _mm256_add_ps(s, acc[c]);
  float out[8];
  _mm256_storeu_ps(out, s);
  return out[0] + out[7];
}

__attribute__((target("avx512f,avx512vnni"))) float DotZmmVnni(long n, float seed) {
  __m512i acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm512_set1_epi32(static_cast<int>(seed) + c);
  const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2);
  for (long i = 0; i < n; ++i) {
    for (int c = 0; c < kChains; ++c) acc[c] = _mm512_dpbusd_epi32(acc[c], a, b);
  }
  __m512i s = acc[0];
  for (int c = 1; c < kChains; ++c) s = _mm512_add_epi32(s, acc[c]);
  int32_t out[16];
  _mm512_storeu_si512(out, s);
  return static_cast<float>(out[0] + out[15]);
}

// AVX2 without VNNI: u8 x s8 pairs to s16 (vpmaddubsw), to s32 (vpmaddwd
// with ones), accumulated (vpaddd): 32 multiply-adds per three instructions.
__attribute__((target("avx2"))) float DotYmm(long n, float seed) {
  __m256i acc[kChains];
  for (int c = 0; c < kChains; ++c) acc[c] = _mm256_set1_epi32(static_cast<int>(seed) + c);
  const __m256i b = _mm256_set1_epi8(-2), ones = _mm256_set1_epi16(1);
  for (long i = 0; i < n; ++i) {
    for (int c = 0; c < kChains; ++c) {
      // The accumulator's bytes as the u8 operand: nothing can be hoisted.
      const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(acc[c], b), ones);
      acc[c] = _mm256_add_epi32(acc[c], p);
    }
  }
  __m256i s = acc[0];
  for (int c = 1; c < kChains; ++c) s = _mm256_add_epi32(s, acc[c]);
  return static_cast<float>(_mm256_extract_epi32(s, 0));
}

// Runs body(kIterations) on every thread until `seconds` passed; ops per
// call per thread = ops_per_iteration * kIterations.
template <typename Body>
double Measure(int threads, double seconds, double ops_per_iteration, Body body) {
  volatile float sink = 0;
  body(1000, 1.0f);  // warm-up (clocks, page-in)
  const auto t0 = std::chrono::steady_clock::now();
  long calls = 0;
  double elapsed = 0;
  do {
#pragma omp parallel num_threads(threads)
    {
      const float r = body(kIterations, static_cast<float>(omp_get_thread_num()));
#pragma omp critical
      sink = sink + r;
    }
    ++calls;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  } while (elapsed < seconds);
  (void)sink;
  return ops_per_iteration * static_cast<double>(kIterations) * static_cast<double>(calls) *
         threads / elapsed / 1e9;
}

}  // namespace

Peak MeasureF32FmaPeak(int threads, double seconds) {
  const CpuFeatures& f = GetCpuFeatures();
  Peak p;
  if (f.avx512f) {
    p.instruction = "vfmadd231ps zmm";
    p.gops = Measure(threads, seconds, kChains * 16 * 2.0, FmaZmm);
  } else if (f.avx2 && f.fma) {
    p.instruction = "vfmadd231ps ymm";
    p.gops = Measure(threads, seconds, kChains * 8 * 2.0, FmaYmm);
  }
  return p;
}

Peak MeasureInt8DotPeak(int threads, double seconds) {
  const CpuFeatures& f = GetCpuFeatures();
  Peak p;
  if (f.avx512_vnni) {
    p.instruction = "vpdpbusd zmm";
    p.gops = Measure(threads, seconds, kChains * 64 * 2.0, DotZmmVnni);
  } else if (f.avx2) {
    p.instruction = "vpmaddubsw+vpmaddwd+vpaddd ymm";
    p.gops = Measure(threads, seconds, kChains * 32 * 2.0, DotYmm);
  }
  return p;
}

}  // namespace embedstream::bench
