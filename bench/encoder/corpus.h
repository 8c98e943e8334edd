#pragma once
// The benchmark's fixed corpus: deterministic English-like sentences of a
// target token length, the same bytes on every machine and run.

#include <cstdint>
#include <string>
#include <vector>

namespace embedstream::bench {

// `count` texts of about `target_words` words each (seeded, reproducible).
std::vector<std::string> MakeCorpus(size_t count, size_t target_words, uint32_t seed);

}  // namespace embedstream::bench
