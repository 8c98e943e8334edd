// ThreadSanitizer options for this test binary (read by TSan at start-up;
// unused in other builds). Data-race detection stays on; the lock-order
// (deadlock) detector is turned off because hnswlib allocates 65,536+ mutexes
// per index and locks neighbour lists in graph order, which overflows the
// detector (reports with null stacks) and flags inversions that cannot
// deadlock: VectorIndex serialises every insert under its exclusive lock.
extern "C" const char* __tsan_default_options();
extern "C" const char* __tsan_default_options() { return "detect_deadlocks=0"; }
