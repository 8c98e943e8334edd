#pragma once
// ES_MULTIVERSION: clones a hot function for AVX-512 and AVX2 machines plus a
// baseline; the dynamic loader picks one per function from the CPU it runs
// on (never from build flags: we build for baseline x86-64). Off under the
// sanitizers (their runtimes do not support ifunc resolvers) and on other
// compilers/architectures, where the function is compiled once.
// Helpers called from a multiversioned function should be forced inline so
// each clone gets its own ISA's copy.

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
#define ES_MULTIVERSION \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define ES_MULTIVERSION
#endif
