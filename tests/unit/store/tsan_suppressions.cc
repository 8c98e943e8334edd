// ThreadSanitizer options for this test binary (read by TSan at start-up;
// unused in other builds). Data-race detection stays on; the lock-order
// (deadlock) detector is turned off because hnswlib allocates 65,536+ mutexes
// per index and locks neighbour lists in graph order, which overflows the
// detector (reports with null stacks) and flags inversions that cannot
// deadlock (hnswlib's addPoint is built for concurrent inserts of distinct
// labels; VectorIndex allows them only inside UpsertBatch, under its
// exclusive lock).
extern "C" const char* __tsan_default_options();
extern "C" const char* __tsan_default_options() { return "detect_deadlocks=0"; }

// hnswlib 0.6.2's addPoint draws each new element's level from one shared
// std::default_random_engine without a lock (hnswalg.h getRandomLevel), so
// UpsertBatch's parallel inserts race on that engine's state; upstream's own
// parallel add (python add_items) does the same. The effect is only on which
// random level an element gets; it is the one race TSan reports here.
extern "C" const char* __tsan_default_suppressions();
extern "C" const char* __tsan_default_suppressions() {
  return "race:hnswlib::HierarchicalNSW<float>::getRandomLevel\n";
}
