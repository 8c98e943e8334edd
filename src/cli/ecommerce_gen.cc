#include "cli/ecommerce_gen.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "cli/internal/ecommerce_vocab.h"
#include "core/json_writer.h"
#include "core/uuid.h"

namespace embedstream::cli {
namespace {

using internal::CategorySpec;
using internal::kAudiences;
using internal::kColors;
using internal::kGenericSentences;
using internal::kRatings;
using internal::kValues;
using internal::kWarranties;
using internal::Specs;
using internal::Words;

constexpr std::array<std::string_view, 5> kEventTypes = {"view", "add_to_cart", "purchase",
                                                         "wishlist", "remove_from_cart"};
constexpr std::array<uint32_t, 5> kEventTypeWeights = {600, 200, 80, 70, 50};
// Sentences per description, 1..8 (weights out of 100): mostly short, a long tail.
constexpr std::array<uint32_t, 8> kSentenceWeights = {12, 16, 18, 16, 12, 10, 8, 8};
// Share of a session's events in the category it browses most.
constexpr double kSessionCategoryStickiness = 0.7;

// Distributions built only on the engine's raw output (fixed by the standard),
// so a seed gives the same values with every standard library.
uint64_t UniformIndex(std::mt19937_64& rng, uint64_t n) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;  // reject the biased tail
  for (;;) {
    const uint64_t x = rng();
    if (x < limit) return x % n;
  }
}

double Uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

// Approximately standard normal (Irwin-Hall: 12 uniforms), arithmetic only.
double StandardNormal(std::mt19937_64& rng) {
  double sum = 0;
  for (int i = 0; i < 12; ++i) sum += Uniform01(rng);
  return sum - 6.0;
}

template <size_t N>
size_t Weighted(std::mt19937_64& rng, const std::array<uint32_t, N>& weights) {
  uint64_t total = 0;
  for (uint32_t w : weights) total += w;
  uint64_t x = UniformIndex(rng, total);
  for (size_t i = 0; i < N; ++i) {
    if (x < weights[i]) return i;
    x -= weights[i];
  }
  return N - 1;
}

// Trials until the first success with mean `mean`, capped.
uint64_t Geometric(std::mt19937_64& rng, double mean, uint64_t cap) {
  const double p = 1.0 / std::max(mean, 1.0);
  uint64_t n = 1;
  while (n < cap && Uniform01(rng) >= p) ++n;
  return n;
}

std::string_view Pick(std::mt19937_64& rng, const Words& words) {
  return words[UniformIndex(rng, words.size())];
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string Capitalised(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

std::string FormatCents(int64_t cents) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%lld.%02lld", static_cast<long long>(cents / 100),
                static_cast<long long>(cents % 100));
  return buf;
}

// What a template's placeholders expand to for one product.
struct ProductWords {
  const CategorySpec* spec;
  std::string_view brand, name_adjective, noun, extra;
  std::string name;  // empty while the name itself is being built
};

std::string Expand(std::mt19937_64& rng, std::string_view tmpl, const ProductWords& p) {
  std::string out;
  out.reserve(tmpl.size() + 64);
  size_t i = 0;
  while (i < tmpl.size()) {
    const size_t open = tmpl.find('{', i);
    if (open == std::string_view::npos) {
      out.append(tmpl.substr(i));
      break;
    }
    const size_t close = tmpl.find('}', open);
    out.append(tmpl.substr(i, open - i));
    const std::string_view key = tmpl.substr(open + 1, close - open - 1);
    i = close + 1;
    const CategorySpec& s = *p.spec;
    if (key == "name") {
      out += p.name;
    } else if (key == "brand") {
      out += p.brand;
    } else if (key == "noun") {
      out += p.name.empty() ? std::string(p.noun) : Lower(p.noun);
    } else if (key == "extra") {
      out += p.extra;
    } else if (key == "adj") {
      out += p.name.empty() ? p.name_adjective : Pick(rng, s.adjectives);
    } else if (key == "feature") {
      out += Expand(rng, Pick(rng, s.features), p);
    } else if (key == "feature_title") {
      out += Pick(rng, s.features);
    } else if (key == "use") {
      out += Pick(rng, s.uses);
    } else if (key == "material") {
      out += Pick(rng, s.materials);
    } else if (key == "model") {
      out.push_back(static_cast<char>('A' + UniformIndex(rng, 26)));
      out += std::to_string(100 * (1 + UniformIndex(rng, 9)) + 10 * UniformIndex(rng, 10));
    } else if (key == "colors") {
      const size_t first = UniformIndex(rng, kColors.size());
      out += kColors[first];
      out += ", ";
      out += kColors[(first + 1) % kColors.size()];
      out += " and ";
      out += kColors[(first + 2) % kColors.size()];
    } else if (key == "warranty") {
      out += Pick(rng, kWarranties);
    } else if (key == "rating") {
      out += Pick(rng, kRatings);
    } else if (key == "audience") {
      out += Pick(rng, kAudiences);
    } else if (key == "value") {
      out += Pick(rng, kValues);
    } else if (key == "n") {
      out += std::to_string(2 + UniformIndex(rng, 7));
    } else if (key == "pct") {
      out += std::to_string(10 + UniformIndex(rng, 31));
    }
  }
  return out;
}

}  // namespace

std::span<const std::string_view> EcommerceGenerator::Categories() {
  static const std::vector<std::string_view> names = [] {
    std::vector<std::string_view> v;
    for (const auto& s : Specs()) v.push_back(s.name);
    return v;
  }();
  return names;
}

std::span<const std::string_view> EcommerceGenerator::EventTypes() { return kEventTypes; }

std::string EcommerceGenerator::FormatTimestampMs(int64_t unix_ms) {
  using namespace std::chrono;
  const sys_time<milliseconds> tp{milliseconds{unix_ms}};
  const auto day = floor<days>(tp);
  const year_month_day ymd{day};
  const hh_mm_ss hms{tp - day};
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ",
                static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
                static_cast<unsigned>(ymd.day()), static_cast<int>(hms.hours().count()),
                static_cast<int>(hms.minutes().count()), static_cast<int>(hms.seconds().count()),
                static_cast<int>(hms.subseconds().count()));
  return buf;
}

EcommerceGenerator::EcommerceGenerator(const EcommerceGenOptions& options)
    : options_(options), rng_(options.seed), clock_ms_(options.base_time_ms) {
  options_.users = std::max<size_t>(options_.users, 1);
  options_.products = std::max(options_.products, Specs().size());  // every category has some
  options_.sessions_active = std::max<size_t>(options_.sessions_active, 1);
  options_.event_gap_ms_max = std::max<int64_t>(options_.event_gap_ms_max, 0);
  BuildCatalog();
  sessions_.resize(options_.sessions_active);
}

void EcommerceGenerator::BuildCatalog() {
  const auto& specs = Specs();
  category_products_.assign(specs.size(), {});
  catalog_.reserve(options_.products);
  product_json_.reserve(options_.products);
  const std::string id_prefix = "ecommerce/product/" + std::to_string(options_.seed) + "/";
  for (size_t i = 0; i < options_.products; ++i) {
    const size_t c = i % specs.size();
    const CategorySpec& s = specs[c];
    ProductWords words{&s,
                       Pick(rng_, s.brands),
                       Pick(rng_, s.name_adjectives),
                       Pick(rng_, s.nouns),
                       Pick(rng_, s.extras),
                       ""};
    EcommerceProduct p;
    p.id = FormatUuid(UuidV5(EmbedstreamNamespace(), id_prefix + std::to_string(i)));
    p.category = std::string(s.name);
    p.name = Expand(rng_, Pick(rng_, s.name_templates), words);
    words.name = p.name;

    // An intro, then distinct sentences from the category's and the shared pool.
    const size_t sentences = 1 + Weighted(rng_, kSentenceWeights);
    std::vector<std::string_view> pool = s.sentences;
    pool.insert(pool.end(), kGenericSentences.begin(), kGenericSentences.end());
    p.description = Capitalised(Expand(rng_, Pick(rng_, s.intros), words));
    for (size_t k = 1; k < sentences && k - 1 < pool.size(); ++k) {
      const size_t j = k - 1 + UniformIndex(rng_, pool.size() - (k - 1));
      std::swap(pool[k - 1], pool[j]);
      p.description += ' ';
      p.description += Capitalised(Expand(rng_, pool[k - 1], words));
    }

    // Log-normal around the category median; most prices end in .99.
    const double dollars = std::clamp(
        s.price_median * std::exp(s.price_sigma * StandardNormal(rng_)), s.price_min, s.price_max);
    int64_t cents = std::llround(dollars * 100.0);
    if (cents >= 500 && Uniform01(rng_) < 0.6) cents = cents / 100 * 100 - 1;
    p.price_cents = std::max<int64_t>(cents, 1);

    JsonWriter w;
    w.BeginObject()
        .Key("id")
        .String(p.id)
        .Key("name")
        .String(p.name)
        .Key("description")
        .String(p.description)
        .Key("category")
        .String(p.category)
        .Key("price")
        .Raw(FormatCents(p.price_cents))  // always two decimals: 12.50, not 12.5
        .EndObject();
    product_json_.push_back(w.Take());
    category_products_[c].push_back(i);
    catalog_.push_back(std::move(p));
  }

  // Popularity: a shuffled order per category, Zipf weights by rank.
  category_cdf_.assign(specs.size(), {});
  for (size_t c = 0; c < specs.size(); ++c) {
    auto& order = category_products_[c];
    for (size_t k = order.size(); k > 1; --k) std::swap(order[k - 1], order[UniformIndex(rng_, k)]);
    double total = 0;
    for (size_t r = 0; r < order.size(); ++r) {
      const double rank = static_cast<double>(r + 1);
      // s = 1 (the default) stays exact division, identical on every libm.
      total += options_.product_zipf_s == 1.0 ? 1.0 / rank
                                              : 1.0 / std::pow(rank, options_.product_zipf_s);
      category_cdf_[c].push_back(total);
    }
  }
}

size_t EcommerceGenerator::PickCategory() {
  const auto& specs = Specs();
  uint64_t total = 0;
  for (const auto& s : specs) total += s.weight_permille;
  uint64_t x = UniformIndex(rng_, total);
  for (size_t c = 0; c < specs.size(); ++c) {
    if (x < specs[c].weight_permille) return c;
    x -= specs[c].weight_permille;
  }
  return specs.size() - 1;
}

const EcommerceProduct& EcommerceGenerator::PickProduct(size_t category) {
  const auto& cdf = category_cdf_[category];
  const double x = Uniform01(rng_) * cdf.back();
  const size_t r = static_cast<size_t>(std::upper_bound(cdf.begin(), cdf.end(), x) - cdf.begin());
  return catalog_[category_products_[category][std::min(r, cdf.size() - 1)]];
}

EcommerceGenerator::Session& EcommerceGenerator::PickSession() {
  Session& s = sessions_[UniformIndex(rng_, sessions_.size())];
  if (s.events_left == 0) {
    s.id = ++sessions_started_;
    // Skewed towards low user numbers (density ~ 1/sqrt): some users come back often.
    const double u = Uniform01(rng_);
    const auto users = static_cast<double>(options_.users);
    s.user = 1 + std::min<uint64_t>(options_.users - 1, static_cast<uint64_t>(users * u * u));
    s.category = PickCategory();
    s.events_left = Geometric(rng_, options_.session_events_mean, 50);
  }
  --s.events_left;
  return s;
}

EcommerceEvent EcommerceGenerator::NextEvent() {
  const uint64_t seq = sequence_++;
  Session& session = PickSession();
  const size_t category =
      Uniform01(rng_) < kSessionCategoryStickiness ? session.category : PickCategory();
  const EcommerceProduct& product = PickProduct(category);
  const std::string_view event_type = kEventTypes[Weighted(rng_, kEventTypeWeights)];
  // Drawn even with wall_clock so the rest of the stream does not change.
  clock_ms_ += static_cast<int64_t>(
      UniformIndex(rng_, static_cast<uint64_t>(options_.event_gap_ms_max) + 1));
  int64_t ts_ms = clock_ms_;
  if (options_.wall_clock) {
    using namespace std::chrono;
    ts_ms = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  }

  EcommerceEvent ev;
  ev.event_id =
      FormatUuid(UuidV5(EmbedstreamNamespace(), "ecommerce/event/" + std::to_string(options_.seed) +
                                                    "/" + std::to_string(seq)));
  ev.event_type = event_type;
  ev.product = &product;
  JsonWriter w;
  w.BeginObject()
      .Key("event_id")
      .String(ev.event_id)
      .Key("timestamp")
      .String(FormatTimestampMs(ts_ms))
      .Key("user_id")
      .String("user" + std::to_string(session.user))
      .Key("event_type")
      .String(event_type)
      .Key("product")
      .Raw(product_json_[static_cast<size_t>(&product - catalog_.data())])
      .Key("session_id")
      .String("session" + std::to_string(session.id))
      .EndObject();
  ev.json = w.Take();
  return ev;
}

}  // namespace embedstream::cli
