#include "search/dataset.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <limits>
#include <thread>
#include <utility>

#include "store/internal/vector_index.h"

namespace embedstream::bench {
namespace {

using store::internal::DotProduct;

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Uniform in the open interval (0, 1).
double Uniform(uint64_t& state) {
  return (static_cast<double>(SplitMix64(state) >> 11) + 0.5) * 0x1.0p-53;
}

// Row `row` of stream `seed`: Box-Muller Gaussians, normalised in double.
void UnitVector(uint64_t seed, uint64_t row, size_t dim, float* out) {
  uint64_t state = seed * 0x9e3779b97f4a7c15ULL ^ (row + 1) * 0xd1b54a32d192ed03ULL;
  std::vector<double> g(dim);
  double norm2 = 0.0;
  for (size_t i = 0; i < dim; i += 2) {
    const double r = std::sqrt(-2.0 * std::log(Uniform(state)));
    const double t = 2.0 * M_PI * Uniform(state);
    g[i] = r * std::cos(t);
    if (i + 1 < dim) g[i + 1] = r * std::sin(t);
  }
  for (double x : g) norm2 += x * x;
  const double inv = 1.0 / std::sqrt(norm2);
  for (size_t i = 0; i < dim; ++i) out[i] = static_cast<float>(g[i] * inv);
}

// out = cosine * x + sqrt(1 - cosine^2) * (u without its component along x,
// renormalised): a unit vector with exactly `cosine` similarity to unit x.
void Tilt(const float* x, const float* u, double cosine, size_t dim, float* out) {
  double along = 0.0, norm2 = 0.0;
  for (size_t d = 0; d < dim; ++d) along += static_cast<double>(u[d]) * x[d];
  std::vector<double> w(dim);
  for (size_t d = 0; d < dim; ++d) {
    w[d] = u[d] - along * x[d];
    norm2 += w[d] * w[d];
  }
  const double s = std::sqrt(std::max(0.0, 1.0 - cosine * cosine));
  const double inv = 1.0 / std::sqrt(norm2);
  for (size_t d = 0; d < dim; ++d) out[d] = static_cast<float>(cosine * x[d] + s * w[d] * inv);
}

// Runs body(i) for i in [0, n) on up to `threads` threads, in contiguous chunks.
template <typename Body>
void ParallelFor(size_t n, int threads, const Body& body) {
  const size_t workers = std::clamp<size_t>(static_cast<size_t>(std::max(threads, 1)), 1, n);
  std::vector<std::thread> pool;
  for (size_t t = 0; t < workers; ++t) {
    pool.emplace_back([&, t] {
      for (size_t i = n * t / workers; i < n * (t + 1) / workers; ++i) body(i);
    });
  }
  for (auto& thread : pool) thread.join();
}

using Scored = std::pair<float, int64_t>;

bool Better(const Scored& a, const Scored& b) {
  return a.first > b.first || (a.first == b.first && a.second < b.second);
}

}  // namespace

std::string DataSpec::Name() const {
  if (kind == Kind::kUniform) return "uniform";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "clustered%zux%.2f", cluster_size,
                static_cast<double>(cluster_cosine));
  return buf;
}

void DataRow(const DataSpec& spec, uint64_t row, float* out) {
  if (spec.kind == DataSpec::Kind::kUniform) {
    UnitVector(spec.seed, row, spec.dim, out);
    return;
  }
  const uint64_t topics = std::max<uint64_t>(1, spec.n / std::max<size_t>(spec.cluster_size, 1));
  uint64_t topic_state = spec.seed ^ (row * 0x9e3779b97f4a7c15ULL);
  const uint64_t topic = SplitMix64(topic_state) % topics;
  std::vector<float> centre(spec.dim), u(spec.dim);
  UnitVector(spec.seed + 1, topic, spec.dim, centre.data());
  UnitVector(spec.seed + 2, row, spec.dim, u.data());
  Tilt(centre.data(), u.data(), spec.cluster_cosine, spec.dim, out);
}

std::vector<float> DataRows(const DataSpec& spec, int threads) {
  std::vector<float> out(spec.n * spec.dim);
  if (spec.n == 0) return out;
  ParallelFor(spec.n, threads, [&](size_t i) { DataRow(spec, i, out.data() + i * spec.dim); });
  return out;
}

std::vector<float> RandomUnitVectors(uint64_t seed, size_t n, size_t dim, int threads) {
  std::vector<float> out(n * dim);
  if (n == 0) return out;
  ParallelFor(n, threads, [&](size_t i) { UnitVector(seed, i, dim, out.data() + i * dim); });
  return out;
}

std::vector<float> NearDuplicates(const DataSpec& spec, size_t count, float cosine, uint64_t seed) {
  std::vector<float> out(count * spec.dim);
  std::vector<float> x(spec.dim), u(spec.dim);
  uint64_t pick_state = seed;
  for (size_t q = 0; q < count; ++q) {
    DataRow(spec, SplitMix64(pick_state) % spec.n, x.data());
    UnitVector(seed + 1, q, spec.dim, u.data());
    Tilt(x.data(), u.data(), cosine, spec.dim, out.data() + q * spec.dim);
  }
  return out;
}

std::vector<int64_t> ExactTopK(const std::vector<float>& data, const std::vector<float>& queries,
                               size_t dim, size_t k, int threads) {
  const size_t n = data.size() / dim;
  const size_t q_count = queries.size() / dim;
  std::vector<int64_t> out(q_count * k, -1);
  // A block of queries stays in cache while every data row streams past it.
  constexpr size_t kBlock = 64;
  const size_t blocks = (q_count + kBlock - 1) / kBlock;
  std::atomic<size_t> next{0};
  auto work = [&] {
    std::vector<std::vector<Scored>> heaps(kBlock);  // worst of the k best on top
    std::vector<float> worst(kBlock);
    for (size_t b = next.fetch_add(1); b < blocks; b = next.fetch_add(1)) {
      const size_t q0 = b * kBlock, q1 = std::min(q_count, q0 + kBlock);
      for (auto& h : heaps) h.clear();
      std::fill(worst.begin(), worst.end(), -std::numeric_limits<float>::infinity());
      for (size_t r = 0; r < n; ++r) {
        const float* row = data.data() + r * dim;
        for (size_t q = q0; q < q1; ++q) {
          const float score = DotProduct(queries.data() + q * dim, row, dim);
          auto& h = heaps[q - q0];
          if (h.size() == k && score < worst[q - q0]) continue;
          const Scored hit{score, static_cast<int64_t>(r)};
          if (h.size() < k) {
            h.push_back(hit);
            if (h.size() < k) continue;
            std::make_heap(h.begin(), h.end(), Better);
          } else if (Better(hit, h.front())) {
            std::pop_heap(h.begin(), h.end(), Better);
            h.back() = hit;
            std::push_heap(h.begin(), h.end(), Better);
          }
          worst[q - q0] = h.front().first;
        }
      }
      for (size_t q = q0; q < q1; ++q) {
        auto& h = heaps[q - q0];
        std::sort(h.begin(), h.end(), Better);
        for (size_t j = 0; j < h.size(); ++j) out[q * k + j] = h[j].second;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& thread : pool) thread.join();
  return out;
}

}  // namespace embedstream::bench
