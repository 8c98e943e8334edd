// bench_sse: can one server on 2 cores hold 1,000 Server-Sent Events clients
// and hand every lifecycle event to each of them within 100 ms at p99, and
// with how much memory? (issue 4)
//
// The clients (client_fleet.h) run on one thread of this process. The delay
// of an event is the wall time its bytes were read minus the `timestamp` the
// SseHub put in it at Publish: hub queueing, dispatcher, socket, and this
// process's own reading. Any lost event (an id gap, fewer events than
// published, a reset) fails the run.
//
// Modes:
//   --inprocess   a forked child runs HttpServer + SseHub on an ephemeral port
//                 and publishes synthetic lifecycle events at --rate events/s
//                 for --seconds (its RSS is the server's alone).
//   --url URL     against a running `embedstream serve` (--server-pid for its
//                 RSS and CPU): POST /messages at --rate messages/s for
//                 --seconds on a separate connection; each message yields
//                 about 6 events (docs/API.md).
//
// Exit code: 0 pass, 1 fail (loss, or p99 over --p99-max-ms), 2 setup error.

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "core/logging.h"
#include "server/http_client.h"
#include "server/http_server.h"
#include "server/sse_hub.h"
#include "sse/client_fleet.h"

namespace embedstream::bench {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct Options {
  int clients = 1000;
  double rate = 0;  // events/s (--inprocess) or messages/s (--url); 0: the mode's default
  double seconds = 10;
  bool inprocess = false;
  std::string url;
  int server_pid = 0;
  std::string token;
  int io_threads = 1;
  int connect_parallel = 64;
  double connect_timeout_s = 60;
  double drain_s = 30;
  double p99_max_ms = 100;
};

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// ---- /proc probes ----------------------------------------------------------

struct ProcMemory {
  double rss_mib = -1;
  double hwm_mib = -1;
};

ProcMemory ReadMemory(int pid) {
  ProcMemory m;
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    long kib = 0;
    if (std::sscanf(line.c_str(), "VmRSS: %ld kB", &kib) == 1)
      m.rss_mib = static_cast<double>(kib) / 1024;
    if (std::sscanf(line.c_str(), "VmHWM: %ld kB", &kib) == 1)
      m.hwm_mib = static_cast<double>(kib) / 1024;
  }
  return m;
}

// User + system CPU seconds of a process; -1 if unreadable.
double ReadCpuSeconds(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(stat.substr(close + 2));
  std::string f;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14) utime = std::stod(f);
    if (i == 15) stime = std::stod(f);
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double SelfCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

// Raises the soft NOFILE limit to what `clients` sockets need (the hard limit
// caps it). Returns the soft limit now in force.
rlim_t RaiseFdLimit(rlim_t wanted) {
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  if (lim.rlim_cur < wanted) {
    lim.rlim_cur = std::min(wanted, lim.rlim_max);
    setrlimit(RLIMIT_NOFILE, &lim);
    getrlimit(RLIMIT_NOFILE, &lim);
  }
  return lim.rlim_cur;
}

// ---- the --inprocess server (a forked child) --------------------------------

bool WriteLine(int fd, const std::string& line) {
  const std::string s = line + "\n";
  return write(fd, s.data(), s.size()) == static_cast<ssize_t>(s.size());
}

std::string ReadLine(int fd) {
  std::string out;
  char c = 0;
  while (read(fd, &c, 1) == 1 && c != '\n') out += c;
  return out;
}

// The i-th synthetic event: messages of six events each, as the pipeline
// publishes them (docs/API.md).
server::LifecycleEvent SyntheticEvent(uint64_t i) {
  static const char* const kStageNames[] = {"tokenize", "embed", "store"};
  const uint64_t message = i / 6;
  const uint64_t step = i % 6;
  server::LifecycleEvent e;
  e.message_id = "bench-" + std::to_string(message);
  e.user_id = "bench-user-" + std::to_string(message % 10);
  if (step == 0) {
    e.type = "message_received";
  } else if (step == 1) {
    e.type = "message_processing";
  } else if (step <= 4) {
    e.type = "stage_completed";
    e.data_json = "{\"stage\":" + std::to_string(step - 1) + ",\"stages\":3,\"name\":\"" +
                  kStageNames[step - 2] + "\"}";
  } else {
    e.type = "message_completed";
    e.data_json = R"({"model":"all-MiniLM-L6-v2","dim":384})";
  }
  return e;
}

// Runs in the child: serve /events, publish on "go", stop on "stop".
int RunChildServer(const Options& o, int cmd_fd, int reply_fd) {
  SetLogLevel("warn");
  server::HttpServer http(
      {.host = "127.0.0.1", .port = 0, .io_threads = std::max(1, o.io_threads)});
  server::SseHub hub;
  hub.Attach(http);
  if (Status st = http.Start(); !st) {
    WriteLine(reply_fd, "error " + st.error().ToString());
    return 1;
  }
  WriteLine(reply_fd, "port " + std::to_string(http.port()));
  if (ReadLine(cmd_fd) != "go") return 0;
  const auto total = static_cast<uint64_t>(std::llround(o.rate * o.seconds));
  const auto t0 = Clock::now();
  for (uint64_t i = 0; i < total; ++i) {
    std::this_thread::sleep_until(
        t0 + std::chrono::duration_cast<Clock::duration>(
                 std::chrono::duration<double>(static_cast<double>(i) / o.rate)));
    hub.Publish(SyntheticEvent(i));
  }
  WriteLine(reply_fd, "published " + std::to_string(total));
  ReadLine(cmd_fd);  // "stop" (or EOF: the parent is gone)
  hub.Stop();
  http.Stop();
  return 0;
}

struct ChildServer {
  int pid = 0;
  int cmd_fd = -1;    // parent -> child
  int reply_fd = -1;  // child -> parent
  uint16_t port = 0;
};

// Forks the server before this process has any thread.
bool StartChildServer(const Options& o, ChildServer& child, std::string& error) {
  int to_child[2], from_child[2];
  if (pipe(to_child) != 0 || pipe(from_child) != 0) {
    error = "pipe failed";
    return false;
  }
  const pid_t pid = fork();
  if (pid < 0) {
    error = "fork failed";
    return false;
  }
  if (pid == 0) {
    close(to_child[1]);
    close(from_child[0]);
    _exit(RunChildServer(o, to_child[0], from_child[1]));
  }
  close(to_child[0]);
  close(from_child[1]);
  child.pid = pid;
  child.cmd_fd = to_child[1];
  child.reply_fd = from_child[0];
  const std::string line = ReadLine(child.reply_fd);
  if (line.rfind("port ", 0) != 0) {
    error = "the server child did not start: " + line;
    return false;
  }
  child.port = static_cast<uint16_t>(std::stoi(line.substr(5)));
  return true;
}

// ---- the --url load: POST /messages at a rate --------------------------------

struct Load {
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> rejected{0};
  std::atomic<bool> done{false};
  std::string first_error;  // written by the load thread before `done`
  double elapsed_s = 0;
};

void PostMessages(const Options& o, const std::string& id_prefix, Load& load) {
  const auto t0 = Clock::now();
  auto client = server::HttpClient::Create(o.url);
  server::HttpHeaders headers{{"Content-Type", "application/json"}};
  if (!o.token.empty()) headers.emplace_back("Authorization", "Bearer " + o.token);
  const auto total = static_cast<uint64_t>(std::llround(o.rate * o.seconds));
  for (uint64_t i = 0; client && i < total; ++i) {
    std::this_thread::sleep_until(
        t0 + std::chrono::duration_cast<Clock::duration>(
                 std::chrono::duration<double>(static_cast<double>(i) / o.rate)));
    const std::string body = R"({"id":")" + id_prefix + std::to_string(i) +
                             R"(","user_id":"sse-bench","message":"sse bench message )" +
                             std::to_string(i) +
                             R"(: live progress of streaming embeddings to a thousand clients"})";
    auto r = client->Request("POST", "/messages", body, headers);
    if (r && r->status == 202) {
      ++load.accepted;
    } else {
      if (load.first_error.empty())
        load.first_error =
            r ? "HTTP " + std::to_string(r->status) + " " + r->body : r.error().ToString();
      ++load.rejected;
      if (!r) break;  // the server is unreachable: stop rather than time out N times
    }
  }
  if (!client) load.first_error = client.error().ToString();
  load.elapsed_s = Seconds(Clock::now() - t0);
  load.done = true;
}

// ---- report ------------------------------------------------------------------

double Percentile(std::vector<float>& v, double p) {
  if (v.empty()) return NAN;
  const auto k = static_cast<size_t>(std::min<double>(
      static_cast<double>(v.size() - 1), std::ceil(p * static_cast<double>(v.size())) - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

int Run(const Options& o) {
  if (o.inprocess == !o.url.empty()) {
    std::fprintf(stderr, "bench_sse: give exactly one of --inprocess and --url\n");
    return 2;
  }
  const rlim_t fds = RaiseFdLimit(static_cast<rlim_t>(o.clients) + 128);
  if (fds < static_cast<rlim_t>(o.clients) + 32) {
    std::fprintf(stderr,
                 "bench_sse: the open-file limit is %lu (hard); %d clients need %d. Raise it "
                 "(ulimit -Hn / limits.conf)\n",
                 static_cast<unsigned long>(fds), o.clients, o.clients + 32);
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);

  ChildServer child;
  FleetOptions fo;
  fo.clients = o.clients;
  fo.connect_parallel = o.connect_parallel;
  int server_pid = o.server_pid;
  const std::string id_prefix = "ssebench-" + std::to_string(getpid()) + "-";
  std::string error;
  if (o.inprocess) {
    if (!StartChildServer(o, child, error)) {
      std::fprintf(stderr, "bench_sse: %s\n", error.c_str());
      return 2;
    }
    server_pid = child.pid;
    fo.port = child.port;
  } else {
    auto url = server::ParseHttpUrl(o.url);
    if (!url) {
      std::fprintf(stderr, "bench_sse: %s\n", url.error().message.c_str());
      return 2;
    }
    fo.host = url->host;
    fo.port = url->port;
    fo.target = url->base_path + "/events";
    fo.completion_prefix = id_prefix;
  }
  const ProcMemory mem_start = server_pid > 0 ? ReadMemory(server_pid) : ProcMemory{};

  std::printf("bench_sse: %d clients, %s, %.0f %s for %.0f s, open-file limit %lu, load avg %s\n",
              o.clients, o.inprocess ? "--inprocess (forked HttpServer + SseHub)" : o.url.c_str(),
              o.rate, o.inprocess ? "events/s" : "messages/s", o.seconds,
              static_cast<unsigned long>(fds), LoadAverage().c_str());

  ClientFleet fleet(fo);
  const auto t_connect = Clock::now();
  if (!fleet.Start(&error)) {
    std::fprintf(stderr, "bench_sse: %s\n", error.c_str());
    return 2;
  }
  const auto connect_deadline = t_connect + std::chrono::duration_cast<Clock::duration>(
                                                std::chrono::duration<double>(o.connect_timeout_s));
  while (fleet.finished_connecting() < static_cast<size_t>(o.clients) &&
         Clock::now() < connect_deadline)
    std::this_thread::sleep_for(5ms);
  const double connect_s = Seconds(Clock::now() - t_connect);
  const size_t subscribed = fleet.subscribed();
  std::this_thread::sleep_for(200ms);  // let the server settle before measuring
  const ProcMemory mem_connected = server_pid > 0 ? ReadMemory(server_pid) : ProcMemory{};
  const double cpu0 = server_pid > 0 ? ReadCpuSeconds(server_pid) : -1;
  const double self_cpu0 = SelfCpuSeconds();

  // Load.
  const auto t_load = Clock::now();
  uint64_t published = 0;
  Load load;
  std::thread load_thread;
  if (subscribed < static_cast<size_t>(o.clients)) {
    std::printf("not every client connected: no load is generated\n");
  } else {
    if (o.inprocess) {
      WriteLine(child.cmd_fd, "go");
      const std::string line = ReadLine(child.reply_fd);
      published = line.rfind("published ", 0) == 0 ? std::stoull(line.substr(10)) : 0;
    } else {
      load_thread = std::thread([&] { PostMessages(o, id_prefix, load); });
      while (!load.done) std::this_thread::sleep_for(10ms);
      load_thread.join();
    }
  }
  const double load_s = Seconds(Clock::now() - t_load);

  // Drain: until every client has every event (or --drain runs out).
  const auto drain_deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                                 std::chrono::duration<double>(o.drain_s));
  auto all_in = [&] {
    if (subscribed < static_cast<size_t>(o.clients)) return true;  // no load was generated
    if (o.inprocess) return fleet.received() >= published * subscribed;
    if (load.accepted.load() == 0) return true;                    // nothing was accepted
    if (fleet.completions() < load.accepted.load()) return false;  // the pipeline is not done
    const uint64_t min_id = fleet.min_id(), max_id = fleet.max_id();
    return min_id <= max_id && fleet.received() >= (max_id - min_id + 1) * subscribed;
  };
  while (!all_in() && Clock::now() < drain_deadline) std::this_thread::sleep_for(10ms);
  std::this_thread::sleep_for(300ms);  // anything late or extra shows up now
  const double run_s = Seconds(Clock::now() - t_load);
  const ProcMemory mem_end = server_pid > 0 ? ReadMemory(server_pid) : ProcMemory{};
  const double cpu1 = server_pid > 0 ? ReadCpuSeconds(server_pid) : -1;
  const double self_cpu1 = SelfCpuSeconds();
  fleet.Stop();
  if (o.inprocess) {
    WriteLine(child.cmd_fd, "stop");
    int status = 0;
    waitpid(child.pid, &status, 0);
  }

  // Per-client accounting.
  uint64_t min_id = UINT64_MAX, max_id = 0;
  for (const auto& r : fleet.results()) {
    if (r.received == 0) continue;
    min_id = std::min(min_id, r.first_id);
    max_id = std::max(max_id, r.last_id);
  }
  uint64_t expected_per_client = 0;
  if (o.inprocess) {
    expected_per_client = published;
    min_id = 1;
  } else if (max_id >= min_id && max_id > 0) {
    expected_per_client = max_id - min_id + 1;
  }
  size_t lossy = 0, closed_early = 0, failed = 0;
  uint64_t received = 0, missing = 0, gaps = 0, bad_ts = 0;
  std::string first_failure;
  for (const auto& r : fleet.results()) {
    if (!r.subscribed) {
      ++failed;
      if (first_failure.empty())
        first_failure = r.error.empty() ? "no response head within --connect-timeout" : r.error;
      continue;
    }
    received += r.received;
    gaps += r.gaps;
    bad_ts += r.bad_timestamps;
    if (r.closed_early) ++closed_early;
    const bool complete = r.received == expected_per_client && r.gaps == 0 &&
                          (r.received == 0 || r.first_id == min_id);
    if (!complete) {
      ++lossy;
      missing += expected_per_client > r.received ? expected_per_client - r.received : 0;
    }
  }

  auto& delays = fleet.delays_ms();
  // Per event type first (Percentile reorders its input).
  std::vector<std::string> by_type;
  {
    const auto& types = ClientFleet::EventTypes();
    std::vector<std::vector<float>> split(types.size());
    for (size_t i = 0; i < delays.size(); ++i) split[fleet.delay_types()[i]].push_back(delays[i]);
    for (size_t t = 0; t < types.size(); ++t) {
      if (split[t].empty()) continue;
      char line[160];
      std::snprintf(line, sizeof(line), "  %-20s p50 %7.2f  p99 %7.2f  max %7.2f  (%zu)",
                    types[t].c_str(), Percentile(split[t], 0.5), Percentile(split[t], 0.99),
                    static_cast<double>(*std::max_element(split[t].begin(), split[t].end())),
                    split[t].size());
      by_type.push_back(line);
    }
  }
  const double p50 = Percentile(delays, 0.50), p90 = Percentile(delays, 0.90),
               p99 = Percentile(delays, 0.99), p999 = Percentile(delays, 0.999);
  const double max_delay = delays.empty() ? NAN : *std::max_element(delays.begin(), delays.end());

  std::printf("clients connected    %zu/%d in %.2f s", subscribed, o.clients, connect_s);
  if (failed > 0) std::printf(" (%zu failed: %s)", failed, first_failure.c_str());
  std::printf("\n");
  if (o.inprocess) {
    std::printf("events published     %llu in %.1f s (%.0f/s)\n",
                static_cast<unsigned long long>(published), load_s,
                static_cast<double>(published) / std::max(load_s, 1e-9));
  } else {
    std::printf("messages posted      %llu accepted, %llu rejected in %.1f s (%.1f/s)%s%s\n",
                static_cast<unsigned long long>(load.accepted.load()),
                static_cast<unsigned long long>(load.rejected.load()), load.elapsed_s,
                static_cast<double>(load.accepted.load()) / std::max(load.elapsed_s, 1e-9),
                load.first_error.empty() ? "" : "; first error: ", load.first_error.c_str());
    std::printf("messages completed   %llu/%llu (message_completed|failed seen)\n",
                static_cast<unsigned long long>(fleet.completions()),
                static_cast<unsigned long long>(load.accepted.load()));
    std::printf("events published     %llu (ids %llu..%llu; about 6 per message)\n",
                static_cast<unsigned long long>(expected_per_client),
                static_cast<unsigned long long>(min_id == UINT64_MAX ? 0 : min_id),
                static_cast<unsigned long long>(max_id));
  }
  std::printf(
      "events received      %llu of %llu expected (%llu per client); clients with loss "
      "%zu, events missing %llu, id gaps %llu, closed early %zu\n",
      static_cast<unsigned long long>(received),
      static_cast<unsigned long long>(expected_per_client * subscribed),
      static_cast<unsigned long long>(expected_per_client), lossy,
      static_cast<unsigned long long>(missing), static_cast<unsigned long long>(gaps),
      closed_early);
  if (bad_ts > 0)
    std::printf("events without a timestamp: %llu\n", static_cast<unsigned long long>(bad_ts));
  std::printf(
      "delivery delay ms    p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  (%zu samples;"
      " Publish timestamp -> read by the client)\n",
      p50, p90, p99, p999, max_delay, delays.size());
  if (by_type.size() > 1) {
    for (const auto& line : by_type) std::printf("%s\n", line.c_str());
  }
  if (server_pid > 0) {
    std::printf(
        "server RSS MiB       before clients %.1f, with clients %.1f, end %.1f, peak %.1f"
        " (%.1f KiB per client)  [pid %d]\n",
        mem_start.rss_mib, mem_connected.rss_mib, mem_end.rss_mib, mem_end.hwm_mib,
        subscribed > 0
            ? (mem_connected.rss_mib - mem_start.rss_mib) * 1024 / static_cast<double>(subscribed)
            : 0.0,
        server_pid);
    std::printf(
        "server CPU           %.2f s over %.1f s (%.0f%% of one core); clients (this "
        "process) %.2f s\n",
        cpu1 - cpu0, run_s, 100 * (cpu1 - cpu0) / run_s, self_cpu1 - self_cpu0);
  } else {
    std::printf("server RSS           not measured (give --server-pid)\n");
  }
  const bool pass = subscribed == static_cast<size_t>(o.clients) && lossy == 0 &&
                    closed_early == 0 && expected_per_client > 0 && !std::isnan(p99) &&
                    p99 <= o.p99_max_ms;
  std::printf("verdict              %s (all %d clients connected, no loss, p99 <= %.0f ms)\n",
              pass ? "PASS" : "FAIL", o.clients, o.p99_max_ms);
  return pass ? 0 : 1;
}

}  // namespace
}  // namespace embedstream::bench

int main(int argc, char** argv) {
  embedstream::bench::Options o;
  CLI::App app{
      "bench_sse: N concurrent SSE clients of GET /events on one thread; per-event delivery "
      "delay (p50/p99/max), loss, server RSS (issue 4: 1,000 clients, p99 <= 100 ms)"};
  app.add_option("--clients", o.clients, "Concurrent SSE clients [1000]");
  app.add_option("--rate", o.rate,
                 "--inprocess: events/s [100]; --url: POST /messages per s (about 6 events "
                 "each) [20]");
  app.add_option("--seconds", o.seconds, "How long to generate load [10]");
  app.add_flag("--inprocess", o.inprocess,
               "Run an HttpServer + SseHub in a forked child and publish synthetic events");
  app.add_option("--url", o.url, "A running `embedstream serve`, e.g. http://127.0.0.1:5000");
  app.add_option("--server-pid", o.server_pid, "--url: the server's pid, for its RSS and CPU");
  app.add_option("--token", o.token,
                 "--url: bearer token for POST /messages [env EMBEDSTREAM_AUTH_TOKEN]");
  app.add_option("--io-threads", o.io_threads, "--inprocess: the server's io threads [1]");
  app.add_option("--connect-parallel", o.connect_parallel, "Connects in flight at once [64]");
  app.add_option("--connect-timeout", o.connect_timeout_s, "Seconds to connect every client [60]");
  app.add_option("--drain", o.drain_s,
                 "Seconds to wait after the load for the last events (--url: for the pipeline "
                 "to finish) [30]");
  app.add_option("--p99-max-ms", o.p99_max_ms, "Pass threshold for the p99 delay [100]");
  CLI11_PARSE(app, argc, argv);
  if (o.rate <= 0) o.rate = o.inprocess ? 100 : 20;
  if (o.token.empty()) {
    if (const char* t = std::getenv("EMBEDSTREAM_AUTH_TOKEN")) o.token = t;
  }
  return embedstream::bench::Run(o);
}
