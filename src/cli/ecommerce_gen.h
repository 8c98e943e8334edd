#pragma once
// EcommerceGenerator: a deterministic stream of seed 002 e-commerce events
// (`embedstream gen ecommerce`, bench/ecommerce, tests).
//
// Owns a product catalog built at construction from the seed (ids are UUIDv5s
// of seed and index; names, descriptions of 1-8 sentences, log-normal prices
// per category) and the session state that Next() advances. Every random
// choice comes from std::mt19937_64 (its output sequence is fixed by the
// standard) through the small distributions in ecommerce_gen.cc, never from
// std::*_distribution, so one seed gives byte-identical output with any
// standard library. Not thread-safe; one generator per thread.
//
// Example:
//   EcommerceGenerator gen({.seed = 7});
//   std::string line = gen.Next();  // {"event_id":"…","timestamp":"2024-01-15T10:00:00.412Z",…}

#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace embedstream::cli {

struct EcommerceGenOptions {
  uint64_t seed = 42;
  size_t users = 5000;
  size_t products = 2000;
  // Sessions open at once; events interleave across them.
  size_t sessions_active = 64;
  // Mean events per session (geometric, at least 1).
  double session_events_mean = 5.0;
  // Zipf exponent of product popularity within a category.
  double product_zipf_s = 1.0;
  // Timestamps start here (Unix ms; 2024-01-15T10:00:00Z) and advance by
  // 0..event_gap_ms_max ms per event, unless wall_clock.
  int64_t base_time_ms = 1705312800000;
  int64_t event_gap_ms_max = 1000;
  bool wall_clock = false;  // timestamps from the system clock (not deterministic)
};

struct EcommerceProduct {
  std::string id;  // UUIDv5 of seed and index
  std::string name;
  std::string description;
  std::string category;
  int64_t price_cents = 0;
};

struct EcommerceEvent {
  std::string event_id;
  std::string_view event_type;
  const EcommerceProduct* product = nullptr;  // into the generator's catalog
  std::string json;                           // one line, no newline
};

class EcommerceGenerator {
 public:
  explicit EcommerceGenerator(const EcommerceGenOptions& options = {});

  // The next event as one line of JSON (no newline).
  std::string Next() { return NextEvent().json; }
  EcommerceEvent NextEvent();

  const std::vector<EcommerceProduct>& catalog() const { return catalog_; }
  uint64_t events_generated() const { return sequence_; }

  static std::span<const std::string_view> Categories();
  static std::span<const std::string_view> EventTypes();
  // "2024-01-15T10:30:00.000Z" for Unix milliseconds.
  static std::string FormatTimestampMs(int64_t unix_ms);

 private:
  struct Session {
    uint64_t id = 0;
    uint64_t user = 0;
    size_t category = 0;  // the category this session browses most
    uint64_t events_left = 0;
  };

  void BuildCatalog();
  size_t PickCategory();
  const EcommerceProduct& PickProduct(size_t category);
  Session& PickSession();

  EcommerceGenOptions options_;
  std::mt19937_64 rng_;
  std::vector<EcommerceProduct> catalog_;
  std::vector<std::string> product_json_;  // serialised "product" objects
  // Per category: catalog indexes in popularity order and their cumulative weights.
  std::vector<std::vector<size_t>> category_products_;
  std::vector<std::vector<double>> category_cdf_;
  std::vector<Session> sessions_;
  uint64_t sequence_ = 0;
  uint64_t sessions_started_ = 0;
  int64_t clock_ms_ = 0;
};

}  // namespace embedstream::cli
