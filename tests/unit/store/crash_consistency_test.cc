// Crash consistency: a child process writes and embeds in a loop, reporting
// each PutMessage that returned OK through a pipe; the parent kills it with
// SIGKILL (or it _exits without closing the store) at varying points, then
// reopens the store and checks that every acknowledged message is there, the
// store opens cleanly and the index agrees with SQLite.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "store/embedded_store.h"
#include "store_test_util.h"

namespace embedstream::store {
namespace {

using testing::Name;
using testing::RandomUnit;
using testing::TempDir;

constexpr size_t kDim = 32;

StoreOptions CrashOptions(const std::filesystem::path& dir) {
  StoreOptions o;
  o.dir = dir;
  o.dim = kDim;
  o.model_name = std::string("crash-model");
  o.exact_search_below = 50;
  o.snapshot_every_changes = 40;  // snapshots often, so kills land inside them
  o.sync_full = false;            // kill -9 only needs NORMAL; keeps the test fast
  return o;
}

std::string RowId(int round, int i) {
  std::string s = std::to_string(round);
  s += '-';
  s += std::to_string(i);
  return s;
}

// Child body: never returns. Puts ids "<round>-<i>", embeds every 8th put,
// fails some, and writes each acknowledged i to fd.
[[noreturn]] void ChildLoop(const std::filesystem::path& dir, int round, int fd, int exit_after) {
  auto opened = EmbeddedStore::Open(CrashOptions(dir));
  if (!opened) _exit(3);
  auto& store = **opened;
  std::mt19937 rng(static_cast<unsigned>(round));
  for (int i = 0;; ++i) {
    const std::string id = RowId(round, i);
    std::string meta = R"({"round":)";
    meta += std::to_string(round);
    meta += '}';
    if (!store.PutMessage(id, std::string("text ") + id, meta).ok()) {
      _exit(4);
    }
    if (::write(fd, &i, sizeof(i)) != static_cast<ssize_t>(sizeof(i))) _exit(5);
    if (i % 8 == 7) {
      auto pending = store.NextPending(8);
      if (!pending) _exit(6);
      std::vector<Embedding> vecs;
      for (const auto& m : *pending) vecs.push_back({m.id, RandomUnit(kDim, rng), m.revision});
      if (!store.StoreEmbeddings(vecs, "m").ok()) _exit(7);
    }
    if (i % 50 == 25 && !store.MarkFailed(id, "synthetic").ok()) _exit(8);
    if (exit_after > 0 && i == exit_after) _exit(0);  // no destructor, no final snapshot
  }
}

// Runs one child; returns the acknowledged indices.
std::set<int> RunChild(const std::filesystem::path& dir, int round, int kill_after_acks,
                       int exit_after) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    ChildLoop(dir, round, fds[1], exit_after);
  }
  ::close(fds[1]);
  std::set<int> acked;
  int v = 0;
  bool killed = false;
  while (::read(fds[0], &v, sizeof(v)) == static_cast<ssize_t>(sizeof(v))) {
    acked.insert(v);
    if (!killed && kill_after_acks > 0 && static_cast<int>(acked.size()) >= kill_after_acks) {
      ::kill(pid, SIGKILL);
      killed = true;  // keep reading: acks already in the pipe count too
    }
  }
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (killed) {
    EXPECT_TRUE(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0));
  } else {
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  }
  return acked;
}

TEST(EmbeddedStoreCrash, AcknowledgedPutsSurviveKillAndExit) {
  TempDir dir("store-crash");
  std::vector<std::pair<int, std::set<int>>> rounds;
  // SIGKILL at different depths (several snapshots in), then a plain _exit.
  const int kill_points[] = {30, 170, 420, 999};
  for (int round = 0; round < 4; ++round) {
    const bool use_exit = round == 3;
    auto acked = RunChild(dir.path(), round, use_exit ? 0 : kill_points[round],
                          use_exit ? kill_points[round] : 0);
    ASSERT_FALSE(acked.empty());
    rounds.emplace_back(round, std::move(acked));

    auto opened = EmbeddedStore::Open(CrashOptions(dir.path()));
    ASSERT_TRUE(opened.ok()) << opened.error().ToString();
    auto& store = **opened;
    size_t expected = 0;
    for (const auto& [r, ids] : rounds) {
      for (int i : ids) {
        auto got = store.Get(RowId(r, i));
        ASSERT_TRUE(got.ok());
        ASSERT_TRUE(got->has_value()) << "lost acknowledged put " << r << "-" << i;
        EXPECT_EQ((*got)->text, std::string("text ") + RowId(r, i));
      }
      expected += ids.size();
    }
    auto stats = *store.Stats();
    EXPECT_GE(stats.total, expected);
    EXPECT_EQ(stats.total, stats.pending + stats.embedded + stats.failed);
    EXPECT_EQ(store.indexed_count(), stats.embedded) << "round " << round;
    std::mt19937 rng(99);
    auto hits = store.Search(RandomUnit(kDim, rng), 5, {});
    ASSERT_TRUE(hits.ok());
    EXPECT_EQ(hits->size(), std::min<size_t>(5, stats.embedded));
  }
}

}  // namespace
}  // namespace embedstream::store
