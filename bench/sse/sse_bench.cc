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
//   --url A --url B (or --url A,B)   against several instances of one cluster
//                 (issue 16: --ingest kafka and an events bus): the clients
//                 are spread round-robin over the URLs, POST /messages go
//                 round-robin over them (one posting thread per URL, message i
//                 to URL i % n, as --users user_ids so the input topic's key
//                 spreads them over its partitions), and every client must
//                 still see every event exactly once with consecutive ids
//                 (the bus's ids are global). --server-pid once per URL.
//
// After the load (--url) it scrapes GET /metrics of every URL before and after
// the load and prints, from the histogram bucket deltas, the events bus's
// share (embedstream_events_bus_delay_seconds: publish on any instance ->
// read from the bus here) and the hub's share
// (embedstream_sse_delivery_delay_seconds: hub received -> handed to every
// client's stream) next to the delay the clients measured.
//
// Exit code: 0 pass, 1 fail (loss, or p99 over --p99-max-ms), 2 setup error.

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

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
  std::vector<std::string> urls;  // --url, repeated or comma-separated
  std::vector<int> server_pids;   // --server-pid, one per URL (in the same order)
  std::vector<int> other_pids;    // --other-pid: CPU only (the broker, Redis)
  int users = 50;                 // --url: user_ids of the posted messages
  double warmup_s = 0;            // --url: post at --rate this long before the clients connect
  bool metrics = true;            // --url: scrape /metrics before and after the load
  std::string trace_csv;          // --trace: every event of one client per URL, as CSV
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

// The machine's CPU time from /proc/stat: busy (user, nice, system, irq,
// softirq) and steal, in seconds, summed over every core.
struct MachineCpu {
  double busy = 0;
  double steal = 0;
};

MachineCpu ReadMachineCpu() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  const auto tck = static_cast<double>(sysconf(_SC_CLK_TCK));
  return {.busy = (user + nice + system + irq + softirq) / tck, .steal = steal / tck};
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
  std::mutex mu;  // guards what follows
  std::string first_error;
  std::vector<uint64_t> accepted_per_url;
  std::vector<float> post_ms;  // round trip of each accepted POST
  double elapsed_s = 0;
};

// Message i goes to URL i % n at t0 + i / rate; one thread (and one keep-alive
// connection) per URL, so a POST that waits for the broker's ack on one
// instance does not hold up the other's.
void PostMessages(const Options& o, double seconds, const std::string& id_prefix, Load& load) {
  const auto t0 = Clock::now();
  const size_t n = o.urls.size();
  const auto total = static_cast<uint64_t>(std::llround(o.rate * seconds));
  {
    std::lock_guard lock(load.mu);
    load.accepted_per_url.assign(n, 0);
  }
  auto post_to = [&](size_t k) {
    auto client = server::HttpClient::Create(o.urls[k]);
    server::HttpHeaders headers{{"Content-Type", "application/json"}};
    if (!o.token.empty()) headers.emplace_back("Authorization", "Bearer " + o.token);
    std::vector<float> post_ms;
    uint64_t accepted = 0;
    std::string error;
    for (uint64_t i = k; client && i < total; i += n) {
      std::this_thread::sleep_until(
          t0 + std::chrono::duration_cast<Clock::duration>(
                   std::chrono::duration<double>(static_cast<double>(i) / o.rate)));
      const std::string body = R"({"id":")" + id_prefix + std::to_string(i) +
                               R"(","user_id":"sse-bench-user-)" +
                               std::to_string(i % static_cast<uint64_t>(std::max(1, o.users))) +
                               R"(","message":"sse bench message )" + std::to_string(i) +
                               R"(: live progress of streaming embeddings to a thousand clients"})";
      const auto t = Clock::now();
      auto r = client->Request("POST", "/messages", body, headers);
      if (r && r->status == 202) {
        post_ms.push_back(static_cast<float>(Seconds(Clock::now() - t) * 1000));
        ++accepted;
        ++load.accepted;
      } else {
        if (error.empty())
          error = o.urls[k] + ": " +
                  (r ? "HTTP " + std::to_string(r->status) + " " + r->body : r.error().ToString());
        ++load.rejected;
        if (!r) break;  // the server is unreachable: stop rather than time out N times
      }
    }
    if (!client) error = o.urls[k] + ": " + client.error().ToString();
    std::lock_guard lock(load.mu);
    if (load.first_error.empty()) load.first_error = error;
    load.accepted_per_url[k] = accepted;
    load.post_ms.insert(load.post_ms.end(), post_ms.begin(), post_ms.end());
  };
  std::vector<std::thread> threads;
  for (size_t k = 0; k < n; ++k) threads.emplace_back(post_to, k);
  for (auto& t : threads) t.join();
  load.elapsed_s = Seconds(Clock::now() - t0);
  load.done = true;
}

// ---- server-side histograms from GET /metrics ----------------------------------

// One histogram series: cumulative bucket counts by upper bound ("le").
struct PromHistogram {
  std::vector<double> le;          // increasing; the last is +Inf
  std::vector<double> cumulative;  // same size
  double sum = 0;
  double count = 0;
};
// Keyed by "name{labels but le}".
using PromHistograms = std::map<std::string, PromHistogram>;

const std::array<std::string_view, 2> kScraped = {"embedstream_events_bus_delay_seconds",
                                                  "embedstream_sse_delivery_delay_seconds"};

// The histograms of `kScraped` in a Prometheus text exposition.
PromHistograms ParseHistograms(std::string_view text) {
  PromHistograms out;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (line.empty() || line[0] == '#') continue;
    const size_t brace = line.find('{');
    const size_t space = line.rfind(' ');
    if (space == std::string_view::npos) continue;
    const std::string_view series = line.substr(0, space);
    const std::string_view name = series.substr(0, std::min(brace, series.size()));
    std::string_view base, suffix;
    for (std::string_view s : {"_bucket", "_sum", "_count"}) {
      if (name.size() > s.size() && name.substr(name.size() - s.size()) == s) {
        base = name.substr(0, name.size() - s.size());
        suffix = s;
        break;
      }
    }
    if (std::find(kScraped.begin(), kScraped.end(), base) == kScraped.end()) continue;
    // The labels, without le (values here hold no ',' or '"').
    std::string labels, le;
    if (brace != std::string_view::npos && series.back() == '}') {
      std::string_view rest = series.substr(brace + 1, series.size() - brace - 2);
      while (!rest.empty()) {
        const size_t comma = rest.find(',');
        const std::string_view pair = rest.substr(0, comma);
        rest.remove_prefix(comma == std::string_view::npos ? rest.size() : comma + 1);
        if (pair.rfind("le=", 0) == 0) {
          le = std::string(pair.substr(4, pair.size() - 5));
        } else {
          if (!labels.empty()) labels += ',';
          labels += pair;
        }
      }
    }
    const std::string key = std::string(base) + "{" + labels + "}";
    const double value = std::strtod(std::string(line.substr(space + 1)).c_str(), nullptr);
    PromHistogram& h = out[key];
    if (suffix == "_bucket") {
      h.le.push_back(le == "+Inf" ? INFINITY : std::strtod(le.c_str(), nullptr));
      h.cumulative.push_back(value);
    } else if (suffix == "_sum") {
      h.sum = value;
    } else {
      h.count = value;
    }
  }
  return out;
}

// after - before, series by series (a series absent before counts from 0).
PromHistograms Delta(const PromHistograms& after, const PromHistograms& before) {
  PromHistograms out = after;
  for (auto& [key, h] : out) {
    auto it = before.find(key);
    if (it == before.end() || it->second.le.size() != h.le.size()) continue;
    for (size_t i = 0; i < h.cumulative.size(); ++i) h.cumulative[i] -= it->second.cumulative[i];
    h.sum -= it->second.sum;
    h.count -= it->second.count;
  }
  return out;
}

void Accumulate(PromHistogram& into, const PromHistogram& h) {
  if (into.le.empty()) {
    into = h;
    return;
  }
  if (into.le.size() != h.le.size()) return;
  for (size_t i = 0; i < h.cumulative.size(); ++i) into.cumulative[i] += h.cumulative[i];
  into.sum += h.sum;
  into.count += h.count;
}

// The q-quantile, linearly interpolated inside its bucket (as Prometheus'
// histogram_quantile); in the +Inf bucket: the last finite bound, and
// `beyond` is set.
double HistogramQuantile(const PromHistogram& h, double q, bool* beyond = nullptr) {
  if (h.count <= 0 || h.le.empty()) return NAN;
  const double rank = q * h.count;
  for (size_t i = 0; i < h.le.size(); ++i) {
    if (h.cumulative[i] < rank) continue;
    const double lower = i == 0 ? 0.0 : h.le[i - 1];
    if (std::isinf(h.le[i])) {
      if (beyond) *beyond = true;
      return lower;
    }
    const double below = i == 0 ? 0.0 : h.cumulative[i - 1];
    const double in_bucket = h.cumulative[i] - below;
    const double frac = in_bucket > 0 ? (rank - below) / in_bucket : 1.0;
    return lower + (h.le[i] - lower) * frac;
  }
  return h.le.size() >= 2 ? h.le[h.le.size() - 2] : NAN;
}

struct Scrape {
  bool ok = false;
  std::string error;
  PromHistograms histograms;
  nlohmann::json stats;  // GET /stats (null when not answered)
};

Scrape ScrapeInstance(const std::string& url, const std::string& token) {
  Scrape s;
  auto client = server::HttpClient::Create(url);
  if (!client) {
    s.error = client.error().ToString();
    return s;
  }
  server::HttpHeaders headers;
  if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
  auto m = client->Request("GET", "/metrics", {}, headers);
  if (!m || m->status != 200) {
    s.error = m ? "GET /metrics: HTTP " + std::to_string(m->status) : m.error().ToString();
    return s;
  }
  s.histograms = ParseHistograms(m->body);
  s.ok = true;
  auto st = client->Request("GET", "/stats", {}, headers);
  if (st && st->status == 200) s.stats = nlohmann::json::parse(st->body, nullptr, false);
  return s;
}

// "p50 1.23  p99 4.56  mean 2.00 ms (n 1234)" of a (delta) histogram in seconds.
std::string DescribeHistogram(const PromHistogram& h) {
  if (h.count <= 0) return "no samples";
  bool beyond = false;
  const double p50 = HistogramQuantile(h, 0.50, &beyond) * 1000;
  const double p99 = HistogramQuantile(h, 0.99, &beyond) * 1000;
  // Samples above 100 ms and above 1 s (bucket bounds: exact counts).
  double over_100ms = 0, over_1s = 0;
  for (size_t i = 0; i < h.le.size(); ++i) {
    if (std::abs(h.le[i] - 0.1) < 1e-9) over_100ms = h.count - h.cumulative[i];
    if (std::abs(h.le[i] - 1.0) < 1e-9) over_1s = h.count - h.cumulative[i];
  }
  char line[240];
  std::snprintf(line, sizeof(line),
                "p50 ~%.2f  p99 ~%.2f%s  mean %.2f ms  (n %.0f; > 100 ms: %.0f, > 1 s: %.0f)", p50,
                p99, beyond ? " (in the +Inf bucket: > 30 s)" : "", h.sum / h.count * 1000, h.count,
                over_100ms, over_1s);
  return line;
}

// ---- report ------------------------------------------------------------------

double Percentile(std::vector<float>& v, double p) {
  if (v.empty()) return NAN;
  const auto k = static_cast<size_t>(std::min<double>(
      static_cast<double>(v.size() - 1), std::ceil(p * static_cast<double>(v.size())) - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

std::string ProcName(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
  std::string name;
  std::getline(in, name);
  return name.empty() ? "?" : name;
}

std::string Join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

int Run(const Options& o) {
  if (o.inprocess == !o.urls.empty()) {
    std::fprintf(stderr, "bench_sse: give exactly one of --inprocess and --url\n");
    return 2;
  }
  if (o.urls.size() > 255) {
    std::fprintf(stderr, "bench_sse: at most 255 --url\n");
    return 2;
  }
  if (!o.server_pids.empty() && o.server_pids.size() != std::max<size_t>(o.urls.size(), 1)) {
    std::fprintf(stderr, "bench_sse: give one --server-pid per --url (%zu pids, %zu urls)\n",
                 o.server_pids.size(), o.urls.size());
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
  fo.trace = !o.trace_csv.empty();
  std::vector<int> server_pids = o.server_pids;
  std::vector<std::string> labels;  // one per endpoint
  const std::string id_prefix = "ssebench-" + std::to_string(getpid()) + "-";
  std::string error;
  if (o.inprocess) {
    if (!StartChildServer(o, child, error)) {
      std::fprintf(stderr, "bench_sse: %s\n", error.c_str());
      return 2;
    }
    server_pids = {child.pid};
    fo.endpoints.push_back({.host = "127.0.0.1", .port = child.port, .target = "/events"});
    labels.push_back("127.0.0.1:" + std::to_string(child.port));
  } else {
    for (const auto& u : o.urls) {
      auto url = server::ParseHttpUrl(u);
      if (!url) {
        std::fprintf(stderr, "bench_sse: %s\n", url.error().message.c_str());
        return 2;
      }
      fo.endpoints.push_back(
          {.host = url->host, .port = url->port, .target = url->base_path + "/events"});
      labels.push_back(url->HostHeader());
    }
    fo.completion_prefix = id_prefix;
  }
  const size_t n_ep = fo.endpoints.size();
  const bool cluster = n_ep > 1;
  std::vector<ProcMemory> mem_start, mem_connected, mem_end;
  std::vector<double> cpu0, cpu1, other_cpu0, other_cpu1;

  std::printf("bench_sse: %d clients, %s, %.0f %s for %.0f s, open-file limit %lu, load avg %s\n",
              o.clients,
              o.inprocess ? "--inprocess (forked HttpServer + SseHub)"
                          : (cluster ? std::to_string(n_ep) + " instances (" + Join(o.urls, ", ") +
                                           "; clients and POSTs round-robin, " +
                                           std::to_string(o.users) + " user_ids)"
                                     : o.urls[0])
                                .c_str(),
              o.rate, o.inprocess ? "events/s" : "messages/s", o.seconds,
              static_cast<unsigned long>(fds), LoadAverage().c_str());

  if (!o.inprocess && o.warmup_s > 0) {
    // Before any client connects: the same load for --warmup seconds (every
    // instance's producers and consumers see traffic once), then until the
    // events bus is quiet and every instance has read the same last id, so
    // every client starts from the same id.
    Load warm;
    PostMessages(o, o.warmup_s, "ssewarm-" + std::to_string(getpid()) + "-", warm);
    const auto t_quiet = Clock::now();
    std::string last, settled_ids;
    bool settled = false;
    auto stable_since = Clock::now();
    while (Seconds(Clock::now() - t_quiet) < 60) {
      std::string ids;
      bool all_caught_up = true;
      for (const auto& u : o.urls) {
        const Scrape sc = ScrapeInstance(u, o.token);
        const auto& eb = sc.stats.is_object() && sc.stats.contains("events_bus")
                             ? sc.stats["events_bus"]
                             : nlohmann::json();
        if (eb.is_object() && eb.contains("received_id")) {  // a bus (not `local`)
          ids += eb.value("received_id", nlohmann::json()).dump() + " ";
          if (eb.value("lag", 1) != 0) all_caught_up = false;
        }
      }
      if (ids != last || !all_caught_up) {
        last = ids;
        stable_since = Clock::now();
      } else if (Seconds(Clock::now() - stable_since) >= 1.5) {
        settled_ids = ids.empty() ? "no events bus" : ids;
        settled = true;
        break;
      }
      std::this_thread::sleep_for(100ms);
    }
    std::printf(
        "warm-up              %llu messages accepted, %llu rejected in %.1f s%s%s; then quiet "
        "after %.1f s (last event id per instance: %s)\n",
        static_cast<unsigned long long>(warm.accepted.load()),
        static_cast<unsigned long long>(warm.rejected.load()), warm.elapsed_s,
        warm.first_error.empty() ? "" : "; first error: ", warm.first_error.c_str(),
        Seconds(Clock::now() - t_quiet), settled ? settled_ids.c_str() : "not settled in 60 s");
  }

  for (int pid : server_pids) mem_start.push_back(ReadMemory(pid));
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
  for (int pid : server_pids) {
    mem_connected.push_back(ReadMemory(pid));
    cpu0.push_back(ReadCpuSeconds(pid));
  }
  for (int pid : o.other_pids) other_cpu0.push_back(ReadCpuSeconds(pid));
  const double self_cpu0 = SelfCpuSeconds();
  const MachineCpu machine0 = ReadMachineCpu();
  // The server-side histograms before the load (they count since start-up).
  std::vector<Scrape> scrapes_before;
  if (!o.inprocess && o.metrics) {
    for (const auto& u : o.urls) scrapes_before.push_back(ScrapeInstance(u, o.token));
  }

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
      load_thread = std::thread([&] { PostMessages(o, o.seconds, id_prefix, load); });
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
  for (int pid : server_pids) {
    mem_end.push_back(ReadMemory(pid));
    cpu1.push_back(ReadCpuSeconds(pid));
  }
  for (int pid : o.other_pids) other_cpu1.push_back(ReadCpuSeconds(pid));
  const double self_cpu1 = SelfCpuSeconds();
  const MachineCpu machine1 = ReadMachineCpu();
  std::vector<Scrape> scrapes_after;
  if (!o.inprocess && o.metrics) {
    for (const auto& u : o.urls) scrapes_after.push_back(ScrapeInstance(u, o.token));
  }
  fleet.Stop();
  if (o.inprocess) {
    WriteLine(child.cmd_fd, "stop");
    int status = 0;
    waitpid(child.pid, &status, 0);
  }

  if (!o.trace_csv.empty()) {
    std::ofstream csv(o.trace_csv);
    csv << "endpoint,id,type,message_id,timestamp,read,delay_ms\n";
    csv.precision(17);
    for (const auto& t : fleet.trace()) {
      csv << (t.endpoint < labels.size() ? labels[t.endpoint] : "?") << ',' << t.id << ',' << t.type
          << ',' << t.message_id << ',' << t.timestamp << ',' << t.read << ','
          << (t.read - t.timestamp) * 1000 << '\n';
    }
    if (!csv) std::fprintf(stderr, "bench_sse: could not write %s\n", o.trace_csv.c_str());
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
  std::vector<size_t> ep_subscribed(n_ep, 0), ep_lossy(n_ep, 0);
  std::vector<uint64_t> ep_received(n_ep, 0);
  std::string first_failure;
  for (const auto& r : fleet.results()) {
    if (!r.subscribed) {
      ++failed;
      if (first_failure.empty())
        first_failure = r.error.empty() ? "no response head within --connect-timeout" : r.error;
      continue;
    }
    ++ep_subscribed[r.endpoint];
    ep_received[r.endpoint] += r.received;
    received += r.received;
    gaps += r.gaps;
    bad_ts += r.bad_timestamps;
    if (r.closed_early) ++closed_early;
    const bool complete = r.received == expected_per_client && r.gaps == 0 &&
                          (r.received == 0 || r.first_id == min_id);
    if (!complete) {
      ++lossy;
      ++ep_lossy[r.endpoint];
      missing += expected_per_client > r.received ? expected_per_client - r.received : 0;
    }
  }

  auto& delays = fleet.delays_ms();
  // Per event type and per instance first (Percentile reorders its input).
  std::vector<std::string> by_type, by_endpoint;
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
  if (cluster) {
    std::vector<std::vector<float>> split(n_ep);
    for (size_t i = 0; i < delays.size(); ++i)
      split[fleet.delay_endpoints()[i]].push_back(delays[i]);
    for (size_t k = 0; k < n_ep; ++k) {
      if (split[k].empty()) continue;
      char line[200];
      std::snprintf(line, sizeof(line), "  clients of %-20s p50 %7.2f  p99 %7.2f  max %7.2f  (%zu)",
                    labels[k].c_str(), Percentile(split[k], 0.5), Percentile(split[k], 0.99),
                    static_cast<double>(*std::max_element(split[k].begin(), split[k].end())),
                    split[k].size());
      by_endpoint.push_back(line);
    }
  }
  // Over the run: the p99 of the events published in each of (about) 10 equal
  // windows of the load, to tell a start-up transient from a steady state.
  std::string by_window;
  if (!delays.empty()) {
    const auto& pub = fleet.delay_published_s();
    const double first = *std::min_element(pub.begin(), pub.end());
    const double last = *std::max_element(pub.begin(), pub.end());
    const int windows = 10;
    const double width = std::max((last - first) / windows, 0.5);
    std::vector<std::vector<float>> split(static_cast<size_t>(windows) + 1);
    for (size_t i = 0; i < delays.size(); ++i)
      split[std::min<size_t>(static_cast<size_t>((pub[i] - first) / width),
                             static_cast<size_t>(windows))]
          .push_back(delays[i]);
    char head[120];
    std::snprintf(head, sizeof(head), "  p99 per %.1f s of publish time:", width);
    by_window = head;
    for (auto& w : split) {
      if (w.empty()) continue;
      char cell[32];
      std::snprintf(cell, sizeof(cell), " %.1f", Percentile(w, 0.99));
      by_window += cell;
    }
  }
  const double p50 = Percentile(delays, 0.50), p90 = Percentile(delays, 0.90),
               p99 = Percentile(delays, 0.99), p999 = Percentile(delays, 0.999);
  const double max_delay = delays.empty() ? NAN : *std::max_element(delays.begin(), delays.end());

  std::printf("clients connected    %zu/%d in %.2f s", subscribed, o.clients, connect_s);
  if (failed > 0) std::printf(" (%zu failed: %s)", failed, first_failure.c_str());
  if (cluster) {
    std::printf(";");
    for (size_t k = 0; k < n_ep; ++k)
      std::printf(" %s %zu%s", labels[k].c_str(), ep_subscribed[k], k + 1 < n_ep ? "," : "");
  }
  std::printf("\n");
  if (o.inprocess) {
    std::printf("events published     %llu in %.1f s (%.0f/s)\n",
                static_cast<unsigned long long>(published), load_s,
                static_cast<double>(published) / std::max(load_s, 1e-9));
  } else {
    std::printf("messages posted      %llu accepted, %llu rejected in %.1f s (%.1f/s)",
                static_cast<unsigned long long>(load.accepted.load()),
                static_cast<unsigned long long>(load.rejected.load()), load.elapsed_s,
                static_cast<double>(load.accepted.load()) / std::max(load.elapsed_s, 1e-9));
    if (cluster) {
      std::printf("; per instance");
      for (size_t k = 0; k < load.accepted_per_url.size(); ++k)
        std::printf(" %s %llu%s", labels[k].c_str(),
                    static_cast<unsigned long long>(load.accepted_per_url[k]),
                    k + 1 < load.accepted_per_url.size() ? "," : "");
    }
    std::printf("%s%s\n",
                load.first_error.empty() ? "" : "; first error: ", load.first_error.c_str());
    if (!load.post_ms.empty()) {
      const double post_max = *std::max_element(load.post_ms.begin(), load.post_ms.end());
      std::printf("POST /messages ms    p50 %.2f  p99 %.2f  max %.2f  (202 round trip)\n",
                  Percentile(load.post_ms, 0.5), Percentile(load.post_ms, 0.99), post_max);
    }
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
  if (cluster) {
    std::printf("  per instance        ");
    for (size_t k = 0; k < n_ep; ++k)
      std::printf(" %s: %llu received, %zu with loss%s", labels[k].c_str(),
                  static_cast<unsigned long long>(ep_received[k]), ep_lossy[k],
                  k + 1 < n_ep ? ";" : "");
    std::printf("\n");
  }
  if (bad_ts > 0)
    std::printf("events without a timestamp: %llu\n", static_cast<unsigned long long>(bad_ts));
  std::printf(
      "delivery delay ms    p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  (%zu samples;"
      " Publish timestamp%s -> read by the client)\n",
      p50, p90, p99, p999, max_delay, delays.size(), cluster ? " on the publishing instance" : "");
  if (by_type.size() > 1) {
    for (const auto& line : by_type) std::printf("%s\n", line.c_str());
  }
  for (const auto& line : by_endpoint) std::printf("%s\n", line.c_str());
  if (!by_window.empty()) std::printf("%s\n", by_window.c_str());

  // Server-side shares: the histogram deltas over the load, per instance and merged.
  std::string bus_name;
  PromHistogram bus_all, hub_all;
  bool have_metrics = false;
  if (!scrapes_after.empty()) {
    std::printf(
        "server histograms    GET /metrics after the connect and after the drain, the "
        "difference; p50/p99 interpolated linearly within the buckets (1, 2.5, 5, 10, 25, 50, "
        "100, 250 ms, ...), mean = sum/count\n");
    for (size_t k = 0; k < scrapes_after.size(); ++k) {
      const Scrape& after = scrapes_after[k];
      if (!after.ok || !scrapes_before[k].ok) {
        std::printf("  %s: /metrics not read: %s\n", labels[k].c_str(),
                    (after.ok ? scrapes_before[k] : after).error.c_str());
        continue;
      }
      have_metrics = true;
      const PromHistograms d = Delta(after.histograms, scrapes_before[k].histograms);
      for (const auto& [key, h] : d) {
        const bool is_bus = key.rfind(kScraped[0], 0) == 0;
        if (is_bus) {
          const size_t at = key.find("bus=\"");
          if (at != std::string::npos)
            bus_name = key.substr(at + 5, key.find('"', at + 5) - at - 5);
          Accumulate(bus_all, h);
        } else {
          Accumulate(hub_all, h);
        }
        if (is_bus && h.count <= 0) continue;
        std::printf("  %-20s %-8s %s\n", labels[k].c_str(),
                    is_bus ? ("bus " + bus_name).c_str() : "hub", DescribeHistogram(h).c_str());
      }
      if (after.stats.is_object() && after.stats.contains("events_bus") &&
          after.stats["events_bus"].is_object() && after.stats["events_bus"].contains("received")) {
        const auto& eb = after.stats["events_bus"];
        std::printf(
            "  %-20s /stats events_bus: received %s, lag %s, delay_mean_ms %.2f (since start)\n",
            labels[k].c_str(), eb.value("received", nlohmann::json()).dump().c_str(),
            eb.value("lag", nlohmann::json()).dump().c_str(), eb.value("delay_mean_ms", 0.0));
      }
    }
    if (cluster && have_metrics) {
      if (bus_all.count > 0)
        std::printf("  %-20s %-8s %s\n", "all instances", ("bus " + bus_name).c_str(),
                    DescribeHistogram(bus_all).c_str());
      std::printf("  %-20s %-8s %s\n", "all instances", "hub", DescribeHistogram(hub_all).c_str());
    }
  }

  // Processes.
  for (size_t k = 0; k < server_pids.size(); ++k) {
    const int pid = server_pids[k];
    const std::string who = cluster ? " " + labels[k] : "";
    std::printf(
        "server RSS MiB%s%s before clients %.1f, with clients %.1f, end %.1f, peak %.1f"
        " (%.1f KiB per client)  [pid %d]\n",
        who.c_str(), cluster ? "" : "      ", mem_start[k].rss_mib, mem_connected[k].rss_mib,
        mem_end[k].rss_mib, mem_end[k].hwm_mib,
        ep_subscribed[k] > 0 ? (mem_connected[k].rss_mib - mem_start[k].rss_mib) * 1024 /
                                   static_cast<double>(ep_subscribed[k])
                             : 0.0,
        pid);
    std::printf("server CPU%s%s %.2f s over %.1f s (%.0f%% of one core)\n", who.c_str(),
                cluster ? "" : "          ", cpu1[k] - cpu0[k], run_s,
                100 * (cpu1[k] - cpu0[k]) / run_s);
  }
  if (server_pids.empty()) std::printf("server RSS           not measured (give --server-pid)\n");
  for (size_t k = 0; k < o.other_pids.size(); ++k) {
    std::printf("other CPU %-10s %.2f s over %.1f s (%.0f%% of one core)  [pid %d]\n",
                ProcName(o.other_pids[k]).c_str(), other_cpu1[k] - other_cpu0[k], run_s,
                100 * (other_cpu1[k] - other_cpu0[k]) / run_s, o.other_pids[k]);
  }
  std::printf(
      "clients CPU          %.2f s (this process: %d clients on one thread, and the POSTs)\n",
      self_cpu1 - self_cpu0, o.clients);
  {
    // Everything else on the machine: the neighbours' share of the cores.
    double ours = self_cpu1 - self_cpu0;
    for (size_t k = 0; k < server_pids.size(); ++k) ours += cpu1[k] - cpu0[k];
    for (size_t k = 0; k < o.other_pids.size(); ++k) ours += other_cpu1[k] - other_cpu0[k];
    const double busy = machine1.busy - machine0.busy;
    const long cores = sysconf(_SC_NPROCESSORS_ONLN);
    std::printf(
        "machine CPU          %.1f s busy of %.1f s (%ld cores x %.1f s, %.0f%%); the processes "
        "above %.1f s, the rest (neighbours, kernel) %.1f s; steal %.1f s\n",
        busy, static_cast<double>(cores) * run_s, cores, run_s,
        100 * busy / (static_cast<double>(cores) * run_s), ours, busy - ours,
        machine1.steal - machine0.steal);
  }
  const bool pass = subscribed == static_cast<size_t>(o.clients) && lossy == 0 &&
                    closed_early == 0 && expected_per_client > 0 && !std::isnan(p99) &&
                    p99 <= o.p99_max_ms;
  if (have_metrics) {
    // The one-line summary: the clients' p99 and the server's shares.
    const double bus_p99 = HistogramQuantile(bus_all, 0.99) * 1000;
    const double bus_mean = bus_all.count > 0 ? bus_all.sum / bus_all.count * 1000 : NAN;
    const double hub_p99 = HistogramQuantile(hub_all, 0.99) * 1000;
    const double hub_mean = hub_all.count > 0 ? hub_all.sum / hub_all.count * 1000 : NAN;
    const bool lossless = lossy == 0 && closed_early == 0 && expected_per_client > 0;
    std::printf("bus %s: delivery p99 %.1f ms (<= %.0f: %s)%s; ",
                bus_name.empty() ? "none (local hub)" : bus_name.c_str(), p99, o.p99_max_ms,
                !std::isnan(p99) && p99 <= o.p99_max_ms ? "PASS" : "FAIL",
                lossless ? "" : ", LOSS");
    if (bus_all.count > 0) std::printf("bus share p99 ~%.1f ms, mean %.1f ms; ", bus_p99, bus_mean);
    std::printf("hub share mean %.2f ms (p99 ~%.1f ms); client p50 %.1f, max %.1f ms\n", hub_mean,
                hub_p99, p50, max_delay);
  }
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
      "delay (p50/p99/max), loss, server RSS (issue 4: 1,000 clients, p99 <= 100 ms; issue 16: "
      "the same over several instances and an events bus)"};
  app.add_option("--clients", o.clients, "Concurrent SSE clients [1000]");
  app.add_option("--rate", o.rate,
                 "--inprocess: events/s [100]; --url: POST /messages per s (about 6 events "
                 "each) [20]");
  app.add_option("--seconds", o.seconds, "How long to generate load [10]");
  app.add_flag("--inprocess", o.inprocess,
               "Run an HttpServer + SseHub in a forked child and publish synthetic events");
  app.add_option("--url", o.urls,
                 "A running `embedstream serve`, e.g. http://127.0.0.1:5000; repeat it (or "
                 "comma-separate) for several instances: clients and POSTs go round-robin")
      ->delimiter(',');
  app.add_option("--server-pid", o.server_pids,
                 "--url: the server's pid, for its RSS and CPU; one per --url, same order")
      ->delimiter(',');
  app.add_option("--other-pid", o.other_pids,
                 "Another process whose CPU time to report (the Kafka broker, Redis); repeatable")
      ->delimiter(',');
  app.add_option("--users", o.users, "--url: distinct user_ids of the posted messages [50]");
  app.add_option("--warmup", o.warmup_s,
                 "--url: post at --rate for this many seconds before the clients connect (not "
                 "measured), then wait until the events bus is quiet [0]");
  app.add_flag("!--no-metrics", o.metrics,
               "--url: do not read /metrics and /stats before and after the load");
  app.add_option("--trace", o.trace_csv,
                 "Write every event the first client of each URL saw to this CSV (endpoint, id, "
                 "type, message_id, timestamp, read, delay_ms)");
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
