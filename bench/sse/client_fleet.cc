#include "sse/client_fleet.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <chrono>
#include <optional>
#include <string_view>

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "server/sse_parser.h"

namespace embedstream::bench {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

double WallSeconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

void AtomicMin(std::atomic<uint64_t>& a, uint64_t v) {
  uint64_t cur = a.load(std::memory_order_relaxed);
  while (v < cur && !a.compare_exchange_weak(cur, v)) {
  }
}

void AtomicMax(std::atomic<uint64_t>& a, uint64_t v) {
  uint64_t cur = a.load(std::memory_order_relaxed);
  while (v > cur && !a.compare_exchange_weak(cur, v)) {
  }
}

// The number after `"key":` in a one-line JSON object; nullopt if absent.
std::optional<double> NumberField(std::string_view json, std::string_view quoted_key) {
  const size_t at = json.find(quoted_key);
  if (at == std::string_view::npos) return std::nullopt;
  const char* p = json.data() + at + quoted_key.size();
  const char* end = json.data() + json.size();
  while (p < end && *p == ' ') ++p;
  double v = 0;
  const auto [ptr, ec] = std::from_chars(p, end, v);
  if (ec != std::errc() || ptr == p) return std::nullopt;
  return v;
}

uint8_t TypeIndex(std::string_view type) {
  const auto& types = ClientFleet::EventTypes();
  for (size_t i = 0; i + 1 < types.size(); ++i) {
    if (types[i] == type) return static_cast<uint8_t>(i);
  }
  return static_cast<uint8_t>(types.size() - 1);
}

}  // namespace

const std::vector<std::string>& ClientFleet::EventTypes() {
  static const std::vector<std::string> kTypes = {"message_received", "message_processing",
                                                  "stage_completed",  "message_completed",
                                                  "message_failed",   "other"};
  return kTypes;
}

// One SSE connection. Everything runs on the fleet's io thread.
struct Connection {
  Connection(asio::io_context& ioc, size_t index_, size_t endpoint_) : socket(ioc), index(index_) {
    result.endpoint = endpoint_;
  }

  enum class Body { kHead, kIdentity, kChunkSize, kChunkData, kChunkEnd, kDone };

  tcp::socket socket;
  size_t index;
  std::array<char, 8192> buf{};
  Body state = Body::kHead;
  std::string head;       // the response head while it arrives
  std::string size_line;  // a chunk-size line while it arrives
  uint64_t chunk_left = 0;
  server::SseParser parser;
  ClientResult result;
};

struct ClientFleet::Impl {
  Impl(ClientFleet& fleet_, FleetOptions options_)
      : fleet(fleet_), options(std::move(options_)), work(asio::make_work_guard(ioc)) {}

  ClientFleet& fleet;
  FleetOptions options;
  asio::io_context ioc{1};
  asio::executor_work_guard<asio::io_context::executor_type> work;
  std::vector<tcp::resolver::results_type> endpoints;  // per FleetOptions::endpoints
  std::vector<std::string> requests;                   // the GET of each endpoint
  std::vector<std::unique_ptr<Connection>> conns;
  size_t next_connect = 0;
  bool stopping = false;
  double read_time = 0;  // wall time of the read being parsed
  std::thread thread;

  void ConnectNext() {
    if (stopping || next_connect >= conns.size()) return;
    Connection& c = *conns[next_connect++];
    asio::async_connect(c.socket, endpoints[c.result.endpoint],
                        [this, &c](const boost::system::error_code& ec, const tcp::endpoint&) {
                          if (ec) {
                            Fail(c, "connect: " + ec.message());
                            ++fleet.finished_connecting_;
                            ConnectNext();
                            return;
                          }
                          c.socket.set_option(tcp::no_delay(true));
                          asio::async_write(
                              c.socket, asio::buffer(requests[c.result.endpoint]),
                              [this, &c](const boost::system::error_code& wec, size_t) {
                                if (wec) {
                                  Fail(c, "write: " + wec.message());
                                  ++fleet.finished_connecting_;
                                  ConnectNext();
                                  return;
                                }
                                Read(c);
                              });
                        });
  }

  void Fail(Connection& c, std::string why) {
    if (c.result.error.empty()) c.result.error = std::move(why);
    boost::system::error_code ignored;
    c.socket.close(ignored);
  }

  void Read(Connection& c) {
    c.socket.async_read_some(asio::buffer(c.buf),
                             [this, &c](const boost::system::error_code& ec, size_t n) {
                               if (n > 0) {
                                 read_time = WallSeconds();
                                 Consume(c, std::string_view(c.buf.data(), n));
                               }
                               if (!c.socket.is_open()) return;  // failed while parsing, or Stop
                               if (ec) {
                                 if (c.result.subscribed) {
                                   c.result.closed_early = true;
                                   if (c.result.error.empty()) c.result.error = ec.message();
                                 } else {
                                   Fail(c, "read: " + ec.message());
                                   ++fleet.finished_connecting_;
                                   ConnectNext();
                                 }
                                 return;
                               }
                               if (c.state == Connection::Body::kDone) {
                                 c.result.closed_early = true;  // the server ended the stream
                                 return;
                               }
                               Read(c);
                             });
  }

  void Consume(Connection& c, std::string_view in) {
    while (!in.empty()) {
      switch (c.state) {
        case Connection::Body::kHead: {
          const size_t before = c.head.size();
          c.head.append(in);
          const size_t end = c.head.find("\r\n\r\n");
          if (end == std::string::npos) return;
          in.remove_prefix(end + 4 - before);
          c.head.resize(end + 4);
          if (c.head.compare(0, 12, "HTTP/1.1 200") != 0 &&
              c.head.compare(0, 12, "HTTP/1.0 200") != 0) {
            Fail(c, "bad status: " + c.head.substr(0, c.head.find('\r')));
            ++fleet.finished_connecting_;
            ConnectNext();
            return;
          }
          std::string lower = c.head;
          for (char& ch : lower)
            ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
          c.state = lower.find("transfer-encoding: chunked") != std::string::npos
                        ? Connection::Body::kChunkSize
                        : Connection::Body::kIdentity;
          c.head.clear();
          c.head.shrink_to_fit();
          c.result.subscribed = true;
          ++fleet.subscribed_;
          ++fleet.finished_connecting_;
          ConnectNext();
          break;
        }
        case Connection::Body::kIdentity:
          Feed(c, in);
          return;
        case Connection::Body::kChunkSize: {
          const size_t nl = in.find('\n');
          if (nl == std::string_view::npos) {
            c.size_line.append(in);
            return;
          }
          c.size_line.append(in.substr(0, nl));
          in.remove_prefix(nl + 1);
          uint64_t size = 0;
          const char* b = c.size_line.data();
          const auto [ptr, ec] = std::from_chars(b, b + c.size_line.size(), size, 16);
          c.size_line.clear();
          if (ec != std::errc() || ptr == b) {
            Fail(c, "bad chunk size");
            return;
          }
          if (size == 0) {
            c.state = Connection::Body::kDone;
            return;
          }
          c.chunk_left = size;
          c.state = Connection::Body::kChunkData;
          break;
        }
        case Connection::Body::kChunkData: {
          const size_t n = static_cast<size_t>(std::min<uint64_t>(c.chunk_left, in.size()));
          Feed(c, in.substr(0, n));
          in.remove_prefix(n);
          c.chunk_left -= n;
          if (c.chunk_left == 0) c.state = Connection::Body::kChunkEnd;
          break;
        }
        case Connection::Body::kChunkEnd: {
          const size_t nl = in.find('\n');
          if (nl == std::string_view::npos) return;
          in.remove_prefix(nl + 1);
          c.state = Connection::Body::kChunkSize;
          break;
        }
        case Connection::Body::kDone:
          return;
      }
    }
  }

  void Feed(Connection& c, std::string_view bytes) {
    c.parser.Feed(bytes, [&](const server::SseEvent& e) { OnEvent(c, e); });
  }

  void OnEvent(Connection& c, const server::SseEvent& e) {
    ClientResult& r = c.result;
    uint64_t id = 0;
    const auto [ptr, ec] = std::from_chars(e.id.data(), e.id.data() + e.id.size(), id);
    if (ec != std::errc() || e.event == "reset") {
      // A reset (the server lost events for this client) or an event without
      // an id: count it as a gap.
      ++r.gaps;
      return;
    }
    if (r.received > 0 && id != r.last_id + 1) ++r.gaps;
    if (r.received == 0) r.first_id = id;
    r.last_id = id;
    ++r.received;
    if (const auto ts = NumberField(e.data, "\"timestamp\":")) {
      fleet.delays_ms_.push_back(static_cast<float>((read_time - *ts) * 1000.0));
      fleet.delay_types_.push_back(TypeIndex(e.event));
      fleet.delay_endpoints_.push_back(static_cast<uint8_t>(r.endpoint));
      fleet.delay_published_s_.push_back(static_cast<float>(*ts - fleet.start_unix_));
      if (options.trace && c.index < options.endpoints.size()) {
        std::string message_id;
        if (const size_t at = e.data.find("\"message_id\":\""); at != std::string_view::npos) {
          const size_t from = at + 14;
          message_id = std::string(e.data.substr(from, e.data.find('"', from) - from));
        }
        TraceRecord t;
        t.endpoint = static_cast<uint8_t>(r.endpoint);
        t.id = id;
        t.type = e.event;
        t.message_id = std::move(message_id);
        t.timestamp = *ts;
        t.read = read_time;
        fleet.trace_.push_back(std::move(t));
      }
    } else {
      ++r.bad_timestamps;
    }
    AtomicMin(fleet.min_id_, id);
    AtomicMax(fleet.max_id_, id);
    fleet.received_.fetch_add(1, std::memory_order_relaxed);
    if (c.index == 0 && !options.completion_prefix.empty() &&
        (e.event == "message_completed" || e.event == "message_failed") &&
        e.data.find("\"message_id\":\"" + options.completion_prefix) != std::string_view::npos) {
      ++fleet.completions_;
    }
  }
};

ClientFleet::ClientFleet(FleetOptions options)
    : impl_(std::make_unique<Impl>(*this, std::move(options))) {}

ClientFleet::~ClientFleet() { Stop(); }

bool ClientFleet::Start(std::string* error) {
  Impl& im = *impl_;
  start_unix_ = WallSeconds();
  if (im.options.endpoints.empty() || im.options.endpoints.size() > 255) {
    if (error) *error = "the fleet needs 1 to 255 endpoints";
    return false;
  }
  tcp::resolver resolver(im.ioc);
  for (const auto& ep : im.options.endpoints) {
    boost::system::error_code ec;
    im.endpoints.push_back(resolver.resolve(ep.host, std::to_string(ep.port), ec));
    if (ec) {
      if (error) *error = "cannot resolve " + ep.host + ": " + ec.message();
      return false;
    }
    const bool v6 = ep.host.find(':') != std::string::npos;
    im.requests.push_back("GET " + ep.target + " HTTP/1.1\r\nHost: " +
                          (v6 ? "[" + ep.host + "]" : ep.host) + ":" + std::to_string(ep.port) +
                          "\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n"
                          "User-Agent: bench_sse\r\n\r\n");
  }
  const size_t n_endpoints = im.options.endpoints.size();
  for (int i = 0; i < im.options.clients; ++i) {
    const auto index = static_cast<size_t>(i);
    im.conns.push_back(std::make_unique<Connection>(im.ioc, index, index % n_endpoints));
  }
  asio::post(im.ioc, [&im] {
    for (int i = 0; i < std::max(1, im.options.connect_parallel); ++i) im.ConnectNext();
  });
  im.thread = std::thread([&im] { im.ioc.run(); });
  return true;
}

void ClientFleet::Stop() {
  Impl& im = *impl_;
  if (!im.thread.joinable()) return;
  asio::post(im.ioc, [&im] {
    im.stopping = true;
    for (auto& c : im.conns) {
      boost::system::error_code ignored;
      c->socket.close(ignored);
    }
  });
  im.work.reset();
  im.thread.join();
  results_.clear();
  for (auto& c : im.conns) results_.push_back(c->result);
}

}  // namespace embedstream::bench
