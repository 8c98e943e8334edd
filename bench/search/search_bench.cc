// bench_search: is the store's HNSW index fast and accurate enough? For each
// size, search latency (one query at a time on one thread, like a search
// request) and recall@k against the exact top-k, next to the store's own exact
// scan measured in the same run. Target (issue 4): p99 <= 5 ms at 1M vectors
// with recall@10 >= 0.95. See bench/search/README.md.
//
//   build/release/bench/bench_search [--sizes 100000,1000000] [--queries 1000]
//       [--k 10] [--ef 64,128,200,300,500,800] [--threads N] [--m 16]
//       [--ef-construction 200] [--exact-queries 20] [--near-cosine 0.8]
//       [--data uniform|clustered] [--cluster-size 1000] [--cluster-cosine 0.7]
//       [--cache-dir .cache/bench-search] [--no-cache]
//
// Data: uniformly random unit vectors (dim 384, fixed seed), the hardest case
// for a graph index, or rows clustered around topic centres. Two query sets:
// random unit vectors, and near-duplicates (cosine --near-cosine with a stored
// row). Built indexes and ground truth are kept in --cache-dir, so a second
// run loads the 1M index instead of rebuilding it.

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "search/dataset.h"
#include "store/internal/vector_index.h"

namespace fs = std::filesystem;
namespace es = embedstream;
using es::store::internal::HnswParams;
using es::store::internal::VectorIndex;

namespace {

constexpr size_t kDim = 384;
constexpr uint64_t kDataSeed = 42;
constexpr uint64_t kQuerySeed = 4242;
constexpr uint64_t kNearSeed = 424242;
// Bump when the data generator changes, so cached indexes are not reused.
constexpr const char* kDataVersion = "v1";

struct Args {
  std::vector<size_t> sizes{100000, 1000000};
  size_t queries = 1000;
  size_t k = 10;
  std::vector<size_t> efs{64, 128, 200, 300, 500, 800};
  int threads = 0;
  size_t m = 16;
  size_t ef_construction = 200;
  size_t exact_queries = 20;
  float near_cosine = 0.8f;
  es::bench::DataSpec data;  // n is set per size
  fs::path cache_dir = fs::path(ES_SOURCE_DIR) / ".cache/bench-search";
  bool cache = true;
};

struct Latency {
  double p50_ms = 0, p99_ms = 0, mean_ms = 0;
};

struct QuerySet {
  std::string name;
  const std::vector<float>* queries;
  const std::vector<int64_t>* truth;
};

struct Row {
  size_t n = 0;
  std::string query_set;
  size_t ef = 0;
  Latency hnsw, hnsw_cpu;
  double recall = 0;
};

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Seconds this thread has run on a CPU (excludes time preempted or asleep).
double ThreadCpuNow() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

std::vector<size_t> ParseList(const std::string& s) {
  std::vector<size_t> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(static_cast<size_t>(std::atoll(item.c_str())));
  }
  return out;
}

Args Parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (s == "--sizes") {
      a.sizes = ParseList(next());
    } else if (s == "--queries") {
      a.queries = static_cast<size_t>(std::atoll(next().c_str()));
    } else if (s == "--k") {
      a.k = static_cast<size_t>(std::atoll(next().c_str()));
    } else if (s == "--ef") {
      a.efs = ParseList(next());
    } else if (s == "--threads") {
      a.threads = std::atoi(next().c_str());
    } else if (s == "--m") {
      a.m = static_cast<size_t>(std::atoll(next().c_str()));
    } else if (s == "--ef-construction") {
      a.ef_construction = static_cast<size_t>(std::atoll(next().c_str()));
    } else if (s == "--exact-queries") {
      a.exact_queries = static_cast<size_t>(std::atoll(next().c_str()));
    } else if (s == "--data") {
      const std::string kind = next();
      if (kind != "uniform" && kind != "clustered") a.queries = 0;  // rejected below
      a.data.kind = kind == "clustered" ? es::bench::DataSpec::Kind::kClustered
                                        : es::bench::DataSpec::Kind::kUniform;
    } else if (s == "--cluster-size") {
      a.data.cluster_size = static_cast<size_t>(std::atoll(next().c_str()));
    } else if (s == "--cluster-cosine") {
      a.data.cluster_cosine = static_cast<float>(std::atof(next().c_str()));
    } else if (s == "--near-cosine") {
      a.near_cosine = static_cast<float>(std::atof(next().c_str()));
    } else if (s == "--cache-dir") {
      a.cache_dir = next();
    } else if (s == "--no-cache") {
      a.cache = false;
    } else {
      std::fprintf(stderr,
                   "usage: bench_search [--sizes N,N] [--queries N] [--k N] [--ef E,E,...] "
                   "[--threads N] [--m N] [--ef-construction N] [--exact-queries N] "
                   "[--near-cosine C] [--data uniform|clustered] [--cluster-size N] "
                   "[--cluster-cosine C] [--cache-dir DIR] [--no-cache]\n");
      std::exit(2);
    }
  }
  if (a.threads <= 0)
    a.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (a.sizes.empty() || a.efs.empty() || a.queries == 0 || a.k == 0) {
    std::fprintf(stderr,
                 "bench_search: --sizes, --ef, --queries and --k must be non-empty; --data is "
                 "uniform or clustered\n");
    std::exit(2);
  }
  return a;
}

// A field of /proc/self/status in bytes ("VmRSS", "VmHWM"); 0 if unreadable.
size_t ProcStatusBytes(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string prefix = std::string(field) + ":";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) {
      return static_cast<size_t>(std::atoll(line.c_str() + prefix.size())) * 1024;
    }
  }
  return 0;
}

double GiB(size_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0); }

Latency Summarise(std::vector<double> ms) {
  Latency l;
  if (ms.empty()) return l;
  std::sort(ms.begin(), ms.end());
  auto at = [&](double p) {
    const auto i = static_cast<size_t>(p * static_cast<double>(ms.size() - 1) + 0.5);
    return ms[std::min(i, ms.size() - 1)];
  };
  l.p50_ms = at(0.50);
  l.p99_ms = at(0.99);
  for (double x : ms) l.mean_ms += x;
  l.mean_ms /= static_cast<double>(ms.size());
  return l;
}

bool ReadInt64s(const fs::path& path, std::vector<int64_t>* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  in.read(reinterpret_cast<char*>(out->data()),
          static_cast<std::streamsize>(out->size() * sizeof(int64_t)));
  return in.gcount() == static_cast<std::streamsize>(out->size() * sizeof(int64_t)) &&
         in.peek() == std::char_traits<char>::eof();
}

void WriteInt64s(const fs::path& path, const std::vector<int64_t>& v) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(v.data()),
            static_cast<std::streamsize>(v.size() * sizeof(int64_t)));
}

fs::path TruthPath(const Args& a, const fs::path& dir, const std::string& name) {
  return dir / (name + "-q" + std::to_string(a.queries) + "-k" + std::to_string(a.k) + ".truth");
}

struct BuiltIndex {
  std::unique_ptr<VectorIndex> index;
  double build_s = 0;
  bool cached = false;
};

HnswParams Params(const Args& a) { return HnswParams{a.m, a.ef_construction, a.efs.front()}; }

// The index saved by an earlier run with the same data and parameters, if any.
BuiltIndex LoadCached(const Args& a, const fs::path& dir, size_t n) {
  BuiltIndex out;
  if (!a.cache) return out;
  int64_t covered = 0;
  const double t0 = Now();
  auto loaded = VectorIndex::Load(dir, kDim, Params(a), &covered);
  std::ifstream build_in(dir / "build_seconds");
  if (loaded && build_in >> out.build_s && (*loaded)->live_count() == n) {
    std::fprintf(stderr, "  loaded %s in %.1f s\n", dir.c_str(), Now() - t0);
    out.index = std::move(*loaded);
    out.cached = true;
  }
  return out;
}

// Inserts rows 0..n-1 with UpsertBatch on a.threads threads, then caches it.
BuiltIndex Build(const Args& a, const fs::path& dir, const std::vector<float>& data, size_t n) {
  BuiltIndex out;
  out.index = std::make_unique<VectorIndex>(kDim, Params(a));
  // Chunks only for progress: each UpsertBatch fans out over a.threads.
  constexpr size_t kChunk = 50000;
  std::vector<int64_t> labels(kChunk);
  const double t0 = Now();
  for (size_t begin = 0; begin < n; begin += kChunk) {
    const size_t count = std::min(kChunk, n - begin);
    for (size_t i = 0; i < count; ++i) labels[i] = static_cast<int64_t>(begin + i);
    auto s = out.index->UpsertBatch(std::span<const int64_t>(labels.data(), count),
                                    data.data() + begin * kDim, a.threads);
    if (!s) {
      std::fprintf(stderr, "bench_search: build failed: %s\n", s.error().ToString().c_str());
      std::exit(1);
    }
    std::fprintf(stderr, "\r  built %zu / %zu (%.0f s)", begin + count, n, Now() - t0);
  }
  out.build_s = Now() - t0;
  std::fprintf(stderr, "\n");
  if (a.cache) {
    if (auto s = out.index->Save(dir, static_cast<int64_t>(n)); !s) {
      std::fprintf(stderr, "  (not cached: %s)\n", s.error().ToString().c_str());
    } else {
      std::ofstream(dir / "build_seconds") << out.build_s << '\n';
    }
  }
  return out;
}

double Recall(const std::vector<es::store::internal::ScoredLabel>& got, const int64_t* truth,
              size_t k) {
  std::unordered_set<int64_t> want(truth, truth + k);
  size_t hits = 0;
  for (size_t i = 0; i < std::min(k, got.size()); ++i) hits += want.count(got[i].second);
  return static_cast<double>(hits) / static_cast<double>(k);
}

// Times SearchHnsw one query at a time, after a short untimed warm-up. Wall
// time is the verdict; on-CPU time shows what is left without preemption.
Row MeasureHnsw(const Args& a, VectorIndex& index, const std::vector<float>& queries,
                const std::vector<int64_t>& truth) {
  const size_t q_count = queries.size() / kDim;
  for (size_t q = 0; q < std::min<size_t>(50, q_count); ++q) {
    (void)index.SearchHnsw(queries.data() + q * kDim, a.k);
  }
  std::vector<double> ms(q_count), cpu_ms(q_count);
  double recall = 0;
  for (size_t q = 0; q < q_count; ++q) {
    const double t0 = Now(), c0 = ThreadCpuNow();
    const auto hits = index.SearchHnsw(queries.data() + q * kDim, a.k);
    cpu_ms[q] = (ThreadCpuNow() - c0) * 1e3;
    ms[q] = (Now() - t0) * 1e3;
    recall += Recall(hits, truth.data() + q * a.k, a.k);
  }
  Row row;
  row.hnsw = Summarise(std::move(ms));
  row.hnsw_cpu = Summarise(std::move(cpu_ms));
  row.recall = recall / static_cast<double>(q_count);
  return row;
}

std::string Today() {
  char buf[32];
  const std::time_t t = std::time(nullptr);
  std::strftime(buf, sizeof(buf), "%Y-%m-%d", std::localtime(&t));
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = Parse(argc, argv);
  std::printf(
      "bench_search %s: dim %zu, k %zu, %zu queries per set, M %zu, ef_construction %zu, "
      "build/truth threads %d, queries on 1 thread\n",
      Today().c_str(), kDim, a.k, a.queries, a.m, a.ef_construction, a.threads);
  char near_buf[32];
  std::snprintf(near_buf, sizeof(near_buf), "near%.2f", static_cast<double>(a.near_cosine));
  const std::string near_name = near_buf;
  std::vector<Row> rows;
  for (const size_t n : a.sizes) {
    std::fprintf(stderr, "n=%zu\n", n);
    es::bench::DataSpec spec = a.data;
    spec.n = n;
    spec.dim = kDim;
    spec.seed = kDataSeed;
    const fs::path dir =
        a.cache_dir / (std::string(kDataVersion) + "-" + spec.Name() + "-n" + std::to_string(n) +
                       "-d" + std::to_string(kDim) + "-seed" + std::to_string(kDataSeed) + "-m" +
                       std::to_string(a.m) + "-efc" + std::to_string(a.ef_construction));
    if (a.cache) fs::create_directories(dir);

    const std::vector<float> random_q =
        es::bench::RandomUnitVectors(kQuerySeed, a.queries, kDim, a.threads);
    const std::vector<float> near_q =
        es::bench::NearDuplicates(spec, a.queries, a.near_cosine, kNearSeed);
    std::vector<int64_t> random_truth(a.queries * a.k), near_truth(a.queries * a.k);
    const bool random_cached = a.cache && ReadInt64s(TruthPath(a, dir, "random"), &random_truth);
    const bool near_cached = a.cache && ReadInt64s(TruthPath(a, dir, near_name), &near_truth);
    BuiltIndex built = LoadCached(a, dir, n);

    // The full data set only when something has to be built or ranked.
    if (!built.index || !random_cached || !near_cached) {
      const double t0 = Now();
      const std::vector<float> data = es::bench::DataRows(spec, a.threads);
      std::fprintf(stderr, "  %s data: %.1f s\n", spec.Name().c_str(), Now() - t0);
      if (!built.index) built = Build(a, dir, data, n);
      auto rank = [&](const std::string& name, const std::vector<float>& queries,
                      std::vector<int64_t>& truth) {
        const double t1 = Now();
        truth = es::bench::ExactTopK(data, queries, kDim, a.k, a.threads);
        std::fprintf(stderr, "  ground truth (%s): %.1f s\n", name.c_str(), Now() - t1);
        if (a.cache) WriteInt64s(TruthPath(a, dir, name), truth);
      };
      if (!random_cached) rank("random", random_q, random_truth);
      if (!near_cached) rank(near_name, near_q, near_truth);
    }
    VectorIndex& index = *built.index;
    const size_t peak = ProcStatusBytes("VmHWM");
    const size_t rss = ProcStatusBytes("VmRSS");

    // The store's exact scan, on the first random queries; also checks it
    // agrees with the bench's brute force.
    std::vector<double> exact_ms, exact_cpu_ms;
    size_t exact_mismatch = 0;
    for (size_t q = 0; q < std::min(a.exact_queries, a.queries); ++q) {
      const double t0 = Now(), c0 = ThreadCpuNow();
      const auto hits = index.SearchExact(random_q.data() + q * kDim, a.k);
      exact_cpu_ms.push_back((ThreadCpuNow() - c0) * 1e3);
      exact_ms.push_back((Now() - t0) * 1e3);
      if (Recall(hits, random_truth.data() + q * a.k, a.k) < 1.0) ++exact_mismatch;
    }
    const Latency exact = Summarise(exact_ms);
    const Latency exact_cpu = Summarise(exact_cpu_ms);

    std::printf(
        "n=%zu %s data: build %.1f s on %d threads%s | index %.2f GiB, RSS %.2f GiB (peak %.2f "
        "GiB with data) | exact scan p50 %.1f ms p99 %.1f ms (on-CPU %.1f / %.1f) over %zu "
        "queries%s\n",
        n, spec.Name().c_str(), built.build_s, a.threads, built.cached ? " (cached)" : "",
        GiB(index.index_bytes()), GiB(rss), GiB(peak), exact.p50_ms, exact.p99_ms, exact_cpu.p50_ms,
        exact_cpu.p99_ms, exact_ms.size(),
        exact_mismatch == 0 ? "" : " (EXACT SCAN DISAGREES WITH BRUTE FORCE)");
    const QuerySet sets[] = {{"random", &random_q, &random_truth},
                             {near_name, &near_q, &near_truth}};
    for (const size_t ef : a.efs) {
      index.set_ef_search(ef);
      for (const QuerySet& set : sets) {
        Row row = MeasureHnsw(a, index, *set.queries, *set.truth);
        row.n = n;
        row.query_set = set.name;
        row.ef = ef;
        std::printf(
            "  n=%-8zu %-9s ef=%-5zu p50 %7.3f ms  p99 %7.3f ms (on-CPU %7.3f)  mean %7.3f ms  "
            "recall@%zu %.4f | exact p50 %.1f ms = %.0fx HNSW p50\n",
            n, set.name.c_str(), ef, row.hnsw.p50_ms, row.hnsw.p99_ms, row.hnsw_cpu.p99_ms,
            row.hnsw.mean_ms, a.k, row.recall, exact.p50_ms, exact.p50_ms / row.hnsw.p50_ms);
        std::fflush(stdout);
        rows.push_back(row);
      }
    }
  }

  // Verdict at the largest size: the smallest ef that reaches the recall.
  const size_t n_max = *std::max_element(a.sizes.begin(), a.sizes.end());
  constexpr double kRecallTarget = 0.95, kP99TargetMs = 5.0;
  for (const std::string& set : {std::string("random"), near_name}) {
    const Row* first = nullptr;
    const Row* best = nullptr;
    for (const Row& r : rows) {
      if (r.n != n_max || r.query_set != set) continue;
      if (best == nullptr || r.recall > best->recall) best = &r;
      if (r.recall >= kRecallTarget && (first == nullptr || r.ef < first->ef)) first = &r;
    }
    if (best == nullptr) continue;
    const bool met = first != nullptr && first->hnsw.p99_ms <= kP99TargetMs;
    if (first != nullptr) {
      std::printf(
          "verdict n=%zu %s queries: recall@%zu >= %.2f first at ef=%zu (%.4f), p99 %.3f ms "
          "(on-CPU %.3f) vs target %.1f ms: %s\n",
          n_max, set.c_str(), a.k, kRecallTarget, first->ef, first->recall, first->hnsw.p99_ms,
          first->hnsw_cpu.p99_ms, kP99TargetMs, met ? "MET" : "NOT MET");
    } else {
      std::printf(
          "verdict n=%zu %s queries: recall@%zu never reached %.2f (best %.4f at ef=%zu, p99 "
          "%.3f ms): NOT MET\n",
          n_max, set.c_str(), a.k, kRecallTarget, best->recall, best->ef, best->hnsw.p99_ms);
    }
  }
  return 0;
}
