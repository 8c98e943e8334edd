#include "encoder/corpus.h"

#include <random>

namespace embedstream::bench {
namespace {

const char* const kWords[] = {
    "stream",       "vector",      "search",   "kafka",     "message",
    "event",        "order",       "customer", "product",   "price",
    "latency",      "throughput",  "model",    "embedding", "sentence",
    "database",     "index",       "query",    "result",    "user",
    "session",      "cart",        "checkout", "payment",   "shipping",
    "review",       "rating",      "quality",  "fast",      "reliable",
    "cheap",        "new",         "old",      "blue",      "large",
    "small",        "the",         "a",        "of",        "and",
    "to",           "in",          "is",       "for",       "on",
    "with",         "as",          "at",       "by",        "from",
    "this",         "that",        "we",       "they",      "it",
    "was",          "were",        "will",     "can",       "should",
    "machine",      "learning",    "network",  "server",    "client",
    "request",      "response",    "error",    "retry",     "backoff",
    "partition",    "offset",      "consumer", "producer",  "topic",
    "broker",       "cluster",     "replica",  "leader",    "follower",
    "commit",       "transaction", "snapshot", "restart",   "crash",
    "recovery",     "durable",     "memory",   "disk",      "cpu",
    "thread",       "core",        "cache",    "miss",      "hit",
    "weather",      "football",    "music",    "travel",    "kitchen",
    "garden",       "coffee",      "mountain", "river",     "city",
    "village",      "morning",     "evening",  "delivery",  "warehouse",
    "inventory",    "discount",    "invoice",  "refund",    "subscription",
    "notification", "dashboard",   "metric",   "histogram", "percentile",
    "benchmark",    "compiler",    "kernel",   "matrix",    "token"};

}  // namespace

std::vector<std::string> MakeCorpus(size_t count, size_t target_words, uint32_t seed) {
  std::mt19937 rng(seed);
  const size_t vocab = sizeof(kWords) / sizeof(kWords[0]);
  std::uniform_int_distribution<size_t> word(0, vocab - 1);
  std::uniform_int_distribution<int> jitter(-2, 2);
  std::vector<std::string> out;
  out.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    const auto n =
        static_cast<size_t>(std::max<long>(1, static_cast<long>(target_words) + jitter(rng)));
    std::string s;
    for (size_t w = 0; w < n; ++w) {
      if (w) s += (w % 11 == 10) ? ", " : " ";
      s += kWords[word(rng)];
    }
    s[0] = static_cast<char>(s[0] - 'a' + 'A');
    s += '.';
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace embedstream::bench
