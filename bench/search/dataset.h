#pragma once
// Synthetic data for bench_search: deterministic unit vectors (uniform on the
// sphere, or clustered around topic centres), queries near stored vectors, and
// the exact top-k by brute force (the ground truth). Every function is
// deterministic for its arguments whatever the thread count; row i of a data
// set can be made on its own, without the rest.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace embedstream::bench {

struct DataSpec {
  enum class Kind { kUniform, kClustered };
  Kind kind = Kind::kUniform;
  size_t n = 0;
  size_t dim = 384;
  uint64_t seed = 42;
  // kClustered: n / cluster_size topic centres, uniform on the sphere; each
  // row has exactly cosine cluster_cosine with its topic's centre.
  size_t cluster_size = 1000;
  float cluster_cosine = 0.7f;

  // Names the data set (for cache files and output), e.g. "uniform" or
  // "clustered1000x0.70".
  std::string Name() const;
};

// Row `row` of the data set, dim floats of unit length.
void DataRow(const DataSpec& spec, uint64_t row, float* out);
// All n rows, row-major.
std::vector<float> DataRows(const DataSpec& spec, int threads);

// n rows uniform on the unit sphere (normalised Gaussian); row i depends only
// on (seed, i).
std::vector<float> RandomUnitVectors(uint64_t seed, size_t n, size_t dim, int threads);

// count queries q = cosine * x + sqrt(1 - cosine^2) * u, where x is a data row
// picked at random and u a random unit vector orthogonal to x: each query has
// exactly `cosine` similarity with the row it was made from.
std::vector<float> NearDuplicates(const DataSpec& spec, size_t count, float cosine, uint64_t seed);

// For each query, the row indices of its k highest inner products over data
// (score descending, index ascending on ties); q_count * k labels, row-major.
std::vector<int64_t> ExactTopK(const std::vector<float>& data, const std::vector<float>& queries,
                               size_t dim, size_t k, int threads);

}  // namespace embedstream::bench
