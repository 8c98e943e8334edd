#include "server/sse_hub.h"

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/json_writer.h"
#include "core/logging.h"

namespace embedstream::server {
namespace {

using SteadyClock = std::chrono::steady_clock;

// One event as kept in the ring: its filter keys and its ready-to-send frame.
struct Entry {
  uint64_t id = 0;
  std::string user_id;
  std::string key;
  std::string frame;  // "id: ..\nevent: ..\ndata: ..\n\n"
  SteadyClock::time_point published;
};

// One connected client. Immutable after registration, except `dropped`.
struct Client {
  uint64_t serial = 0;
  std::shared_ptr<StreamSink> sink;
  std::string user_id;  // filter; empty: any
  std::string key;      // filter; empty: any
  // Events up to this id were in the replay or predate the client: the
  // dispatcher sends only later ones.
  uint64_t start_after_id = 0;

  bool Wants(const Entry& e) const {
    return (user_id.empty() || user_id == e.user_id) && (key.empty() || key == e.key);
  }
};

using ClientList = std::vector<std::shared_ptr<const Client>>;

// The event type goes on an `event:` line: keep it to one line.
std::string OneLine(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

// The inside of a JSON object ("{...}" without the braces), newlines turned
// into spaces (in valid JSON they can only be whitespace). Empty when
// `json` is empty or not an object.
std::string_view ObjectMembers(std::string_view json) {
  const auto first = json.find_first_not_of(" \t\r\n");
  const auto last = json.find_last_not_of(" \t\r\n");
  if (first == std::string_view::npos || json[first] != '{' || json[last] != '}') return {};
  std::string_view inner = json.substr(first + 1, last - first - 1);
  const auto begin = inner.find_first_not_of(" \t\r\n");
  if (begin == std::string_view::npos) return {};
  return inner.substr(begin);
}

// "event: ..\ndata: ..\n\n"; Publish and Deliver put the "id: " line in front.
std::string FormatEventAndData(std::string_view type, std::string_view data) {
  std::string frame;
  frame.reserve(data.size() + type.size() + 20);
  frame += "event: ";
  frame += OneLine(type);
  frame += "\ndata: ";
  for (char c : data) frame += (c == '\n' || c == '\r') ? ' ' : c;
  frame += "\n\n";
  return frame;
}

std::string ResetFrame(uint64_t last_event_id, uint64_t oldest_id, uint64_t latest_id) {
  JsonWriter w;
  w.BeginObject()
      .Key("type")
      .String("reset")
      .Key("last_event_id")
      .Uint(last_event_id)
      .Key("oldest_event_id")
      .Uint(oldest_id)
      .Key("latest_event_id")
      .Uint(latest_id)
      .EndObject();
  return "event: reset\ndata: " + w.Take() + "\n\n";
}

std::string FormatFrame(uint64_t id, const std::string& body) {
  std::string frame;
  frame.reserve(body.size() + 24);
  frame += "id: ";
  frame += std::to_string(id);
  frame += '\n';
  frame += body;
  return frame;
}

bool ParseId(std::string_view s, uint64_t& out) {
  const auto* end = s.data() + s.size();
  const auto [ptr, ec] = std::from_chars(s.data(), end, out);
  return ec == std::errc() && ptr == end && !s.empty();
}

}  // namespace

std::string LifecycleEventData(const LifecycleEvent& e, double timestamp) {
  JsonWriter w;
  w.BeginObject().Key("type").String(e.type).Key("message_id").String(e.message_id);
  if (!e.user_id.empty()) w.Key("user_id").String(e.user_id);
  if (!e.key.empty()) w.Key("key").String(e.key);
  w.Key("timestamp").Double(timestamp).EndObject();
  std::string data = w.Take();
  const std::string_view members = ObjectMembers(e.data_json);
  if (!members.empty()) {
    data.pop_back();  // '}'
    data += ',';
    for (char c : members) data += (c == '\n' || c == '\r') ? ' ' : c;
    data += '}';
  }
  return data;
}

struct SseHub::State : std::enable_shared_from_this<SseHub::State> {
  explicit State(SseHubOptions opts)
      : options(std::move(opts)),
        log(GetLogger("sse")),
        metrics(options.metrics ? *options.metrics : MetricsRegistry::Global()),
        clients_gauge(metrics.GetGauge("embedstream_sse_clients", "Connected SSE clients.")),
        published(metrics.GetCounter("embedstream_sse_events_published_total",
                                     "Lifecycle events published to the SSE hub.")),
        dropped(metrics.GetCounter("embedstream_sse_clients_dropped_total",
                                   "SSE clients closed for reading too slowly.")),
        delivery_delay(
            metrics.GetHistogram("embedstream_sse_delivery_delay_seconds",
                                 "From Publish to the event handed to every SSE client's stream.",
                                 LatencyBucketsSeconds())) {
    options.ring_capacity = std::max<size_t>(options.ring_capacity, 1);
    if (options.heartbeat <= std::chrono::milliseconds::zero())
      options.heartbeat = std::chrono::milliseconds(15000);
  }

  SseHubOptions options;
  std::shared_ptr<spdlog::logger> log;
  MetricsRegistry& metrics;
  Gauge& clients_gauge;
  Counter& published;
  Counter& dropped;
  Histogram& delivery_delay;

  mutable std::mutex mu;
  std::condition_variable wake;
  // Increasing ids (contiguous when the hub issues them; a bus may skip).
  // Every event with an id in (floor_id, last_id] is in the ring.
  std::deque<std::shared_ptr<const Entry>> ring;
  uint64_t last_id = 0;   // the newest id issued or delivered
  uint64_t floor_id = 0;  // events at or below this id are not held (evicted, or before the window)
  uint64_t dispatched_id = 0;  // the dispatcher has sent up to here
  std::shared_ptr<const ClientList> clients =
      std::make_shared<const ClientList>();  // copy-on-write
  uint64_t next_serial = 1;
  bool stopping = false;
  std::thread dispatcher;

  uint64_t LatestId() const {
    std::lock_guard<std::mutex> lock(mu);
    return last_id;
  }
  // The position of the first entry with an id above `id`.
  size_t FirstAfterLocked(uint64_t id) const {
    return static_cast<size_t>(std::partition_point(ring.begin(), ring.end(),
                                                    [id](const auto& e) { return e->id <= id; }) -
                               ring.begin());
  }
  void AppendLocked(std::shared_ptr<Entry> entry) {
    entry->published = SteadyClock::now();
    last_id = entry->id;
    ring.push_back(std::move(entry));
    if (ring.size() > options.ring_capacity) {
      floor_id = ring.front()->id;
      ring.pop_front();
    }
  }

  void AddClientLocked(std::shared_ptr<const Client> client) {
    auto list = std::make_shared<ClientList>(*clients);
    list->push_back(std::move(client));
    clients_gauge.Set(static_cast<double>(list->size()));
    clients = std::move(list);
  }

  // Returns whether the client was still registered.
  bool RemoveClient(uint64_t serial) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = std::find_if(clients->begin(), clients->end(),
                           [serial](const auto& c) { return c->serial == serial; });
    if (it == clients->end()) return false;
    auto list = std::make_shared<ClientList>(*clients);
    list->erase(list->begin() + (it - clients->begin()));
    clients_gauge.Set(static_cast<double>(list->size()));
    clients = std::move(list);
    return true;
  }

  // Sends `chunk`; a client that refuses it while open is too slow: drop it.
  void SendOrDrop(const Client& c, std::string chunk) {
    if (!c.sink->IsOpen()) {  // gone; its on_close removes it
      RemoveClient(c.serial);
      return;
    }
    if (c.sink->Send(std::move(chunk))) return;
    if (RemoveClient(c.serial)) {
      dropped.Inc();
      log->warn("sse client dropped: too slow (user_id='{}', key='{}')", c.user_id, c.key);
    }
    c.sink->Close();
  }

  void RunDispatcher() {
    auto next_heartbeat = SteadyClock::now() + options.heartbeat;
    std::vector<std::shared_ptr<const Entry>> batch;
    for (;;) {
      std::shared_ptr<const ClientList> snapshot;
      uint64_t lost_before = 0;  // events below this id were evicted undelivered
      uint64_t latest = 0;
      bool heartbeat = false;
      {
        std::unique_lock<std::mutex> lock(mu);
        wake.wait_until(lock, next_heartbeat, [&] { return stopping || dispatched_id < last_id; });
        if (stopping) return;
        if (dispatched_id < floor_id) {
          lost_before = floor_id + 1;
          dispatched_id = floor_id;
        }
        batch.clear();
        for (size_t i = FirstAfterLocked(dispatched_id); i < ring.size(); ++i)
          batch.push_back(ring[i]);
        dispatched_id = last_id;
        latest = last_id;
        snapshot = clients;
        if (SteadyClock::now() >= next_heartbeat) {
          heartbeat = true;
          next_heartbeat = SteadyClock::now() + options.heartbeat;
        }
      }
      if (lost_before != 0)
        log->warn("sse dispatcher fell behind the ring; events before id {} were not sent",
                  lost_before);
      for (const auto& client : *snapshot) {
        std::string chunk;
        if (lost_before != 0 && client->start_after_id + 1 < lost_before)
          chunk += ResetFrame(client->start_after_id, lost_before, latest);
        for (const auto& e : batch) {
          if (e->id > client->start_after_id && client->Wants(*e)) chunk += e->frame;
        }
        if (heartbeat) chunk += ": ping\n\n";
        if (!chunk.empty()) SendOrDrop(*client, std::move(chunk));
      }
      const auto now = SteadyClock::now();
      for (const auto& e : batch)
        delivery_delay.Observe(std::chrono::duration<double>(now - e->published).count());
    }
  }

  HttpResponse Subscribe(const HttpRequest& r, const std::shared_ptr<StreamSink>& sink) {
    uint64_t last_event_id = 0;
    bool resume = false;
    auto header = r.headers.find("last-event-id");
    std::string_view id_text;
    if (header != r.headers.end()) {
      id_text = header->second;
    } else if (auto q = r.query.find("last_event_id"); q != r.query.end()) {
      id_text = q->second;
    }
    if (!id_text.empty()) {
      if (!ParseId(id_text, last_event_id))
        return JsonError(400, "bad_request", "Last-Event-ID must be a non-negative integer");
      resume = true;
    }
    auto client = std::make_shared<Client>();
    client->sink = sink;
    if (auto q = r.query.find("user_id"); q != r.query.end()) client->user_id = q->second;
    if (auto q = r.query.find("key"); q != r.query.end()) client->key = q->second;

    // An external id past what this hub holds: the bus has not brought it
    // here yet, unless the bus never issued it (asked outside the lock).
    bool ahead_of_bus = false;
    if (resume && options.external_ids && options.bus_latest && last_event_id > LatestId()) {
      const uint64_t on_bus = options.bus_latest();
      ahead_of_bus = on_bus != 0 && last_event_id > on_bus;
    }
    std::vector<std::shared_ptr<const Entry>> replay;
    uint64_t oldest = 0;
    uint64_t latest = 0;
    bool missed = false;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (stopping) return JsonError(503, "unavailable", "the event stream is shutting down");
      oldest = floor_id + 1;
      latest = last_id;
      client->serial = next_serial++;
      client->start_after_id = latest;
      if (resume) {
        missed = last_event_id < floor_id ||
                 (last_event_id > latest && (!options.external_ids || ahead_of_bus));
        if (last_event_id < latest) {
          for (size_t i = FirstAfterLocked(last_event_id); i < ring.size(); ++i) {
            if (client->Wants(*ring[i])) replay.push_back(ring[i]);
          }
        } else if (options.external_ids && !missed) {
          client->start_after_id = last_event_id;  // skip what the client already has
        }
      }
      AddClientLocked(client);
    }
    // Outside the lock: if the stream has already ended this runs at once.
    sink->SetOnClose([weak = weak_from_this(), serial = client->serial] {
      if (auto self = weak.lock()) self->RemoveClient(serial);
    });

    HttpResponse head;
    head.content_type = "text/event-stream";
    head.headers.emplace_back("Cache-Control", "no-cache");
    head.headers.emplace_back("X-Accel-Buffering", "no");
    head.body = ": connected\n\n";
    if (missed) head.body += ResetFrame(last_event_id, oldest, latest);
    for (const auto& e : replay) head.body += e->frame;
    return head;
  }
};

SseHub::SseHub(SseHubOptions options) : state_(std::make_shared<State>(std::move(options))) {
  state_->dispatcher = std::thread([s = state_.get()] { s->RunDispatcher(); });
}

SseHub::~SseHub() { Stop(); }

void SseHub::Attach(HttpServer& server, const std::string& path) {
  server.RouteStream(
      "GET", path, [state = state_](const HttpRequest& r, const std::shared_ptr<StreamSink>& sink) {
        return state->Subscribe(r, sink);
      });
}

uint64_t SseHub::Publish(LifecycleEvent event) {
  const double timestamp = event.timestamp > 0 ? event.timestamp : UnixSeconds();
  const std::string body = FormatEventAndData(event.type, LifecycleEventData(event, timestamp));
  auto entry = std::make_shared<Entry>();
  entry->user_id = std::move(event.user_id);
  entry->key = std::move(event.key);
  uint64_t id = 0;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    id = entry->id = state_->last_id + 1;
    entry->frame = FormatFrame(id, body);
    state_->AppendLocked(std::move(entry));
  }
  state_->published.Inc();
  state_->wake.notify_one();
  return id;
}

bool SseHub::Deliver(uint64_t id, std::string_view type, std::string user_id, std::string key,
                     std::string_view data) {
  auto entry = std::make_shared<Entry>();
  entry->id = id;
  entry->user_id = std::move(user_id);
  entry->key = std::move(key);
  entry->frame = FormatFrame(id, FormatEventAndData(type, data));
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (id <= state_->last_id) return false;
    state_->AppendLocked(std::move(entry));
  }
  state_->published.Inc();
  state_->wake.notify_one();
  return true;
}

void SseHub::SetFloor(uint64_t id) {
  std::lock_guard<std::mutex> lock(state_->mu);
  if (!state_->ring.empty() || id <= state_->last_id) return;
  state_->floor_id = state_->last_id = state_->dispatched_id = id;
}

uint64_t SseHub::latest_id() const { return state_->LatestId(); }

size_t SseHub::clients() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  return state_->clients->size();
}

void SseHub::Stop() {
  std::thread dispatcher;
  std::shared_ptr<const ClientList> clients;
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->stopping = true;
    dispatcher = std::move(state_->dispatcher);
    clients = std::exchange(state_->clients, std::make_shared<const ClientList>());
    state_->clients_gauge.Set(0);
  }
  state_->wake.notify_all();
  if (dispatcher.joinable()) dispatcher.join();
  for (const auto& c : *clients) c->sink->Close();
}

}  // namespace embedstream::server
