#pragma once
// ES_CHECK: invariants of our own code (tensor shapes, internal state).
// Never use it for anything input can trigger: that is an Error value.

#include <cstdio>
#include <cstdlib>

#define ES_CHECK(cond)                                                                  \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)
