#pragma once
// FifoMutex: a mutex that is handed over in the order lock() was called, so
// a thread that unlocks and locks again in a loop (the pipeline's encoder
// thread, slice after slice) cannot starve another that waits (a search
// embedding its query). std::mutex promises no order. Meets Lockable: use
// it with std::lock_guard / std::unique_lock.

#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace embedstream {

class FifoMutex {
 public:
  void lock() {
    std::unique_lock l(mu_);
    const uint64_t ticket = next_++;
    cv_.wait(l, [&] { return serving_ == ticket; });
  }
  void unlock() {
    {
      std::lock_guard l(mu_);
      ++serving_;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t next_ = 0;     // the ticket of the next lock()
  uint64_t serving_ = 0;  // the ticket that holds the lock
};

}  // namespace embedstream
