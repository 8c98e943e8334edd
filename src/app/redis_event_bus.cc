// The Redis events bus (app/event_bus.h): a Lua script per event gives it a
// global id (INCR), appends it to a stream (XADD, MAXLEN ~ window) and
// publishes it per user and on the firehose channel (seed 003); every
// instance reads the stream with XREAD BLOCK.

#include <charconv>
#include <condition_variable>
#include <deque>
#include <thread>
#include <vector>

#include "app/event_bus_base.h"
#include "core/clock.h"
#include "server/redis_client.h"

namespace embedstream::app {
namespace {

using server::RedisConnection;
using server::RedisReply;

// KEYS[1] stream, KEYS[2] id counter; ARGV[1] MAXLEN, ARGV[2] data JSON,
// ARGV[3] the user's channel ("" for none), ARGV[4] the firehose channel,
// ARGV[5] where a missing counter restarts (a Redis that lost its data must
// not issue ids the instances already hold: they would drop them as
// redeliveries).
constexpr std::string_view kPublishScript = R"lua(
if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('SET', KEYS[2], ARGV[5]) end
local id = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], string.format('%d-0', id), 'd', ARGV[2])
local msg = '{"id":' .. string.format('%d', id) .. ',' .. string.sub(ARGV[2], 2)
if ARGV[3] ~= '' then redis.call('PUBLISH', ARGV[3], msg) end
redis.call('PUBLISH', ARGV[4], msg)
return id
)lua";

constexpr size_t kPipelineMax = 512;  // events per round trip
// A counter lost with Redis's data restarts this far past the newest id an
// instance has seen (other instances may have seen a few more).
constexpr uint64_t kRestartGap = 1000000;
constexpr auto kBlock = std::chrono::milliseconds(1000);

// "123-0" -> 123; 0 when malformed.
uint64_t StreamId(std::string_view s) {
  uint64_t id = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), id);
  return ec == std::errc() ? id : 0;
}

// The "d" field of one stream entry [id, [field, value, ...]].
bool EntryData(const RedisReply& entry, uint64_t& id, std::string_view& data) {
  if (entry.type != RedisReply::Type::kArray || entry.elements.size() != 2) return false;
  id = StreamId(entry.elements[0].str);
  const auto& fields = entry.elements[1].elements;
  for (size_t i = 0; i + 1 < fields.size(); i += 2) {
    if (fields[i].str == "d") {
      data = fields[i + 1].str;
      return id != 0;
    }
  }
  return false;
}

class RedisEventBus final : public internal::BusBase {
 public:
  RedisEventBus(const EventBusOptions& options, server::RedisOptions redis)
      : BusBase(options, "redis"),
        redis_(std::move(redis)),
        stream_key_(options.redis_prefix + ":stream"),
        seq_key_(options.redis_prefix + ":seq"),
        window_(std::to_string(std::max<size_t>(options.window, 1))) {}
  ~RedisEventBus() override { Stop(); }

  Status Start(server::SseHub& hub) override {
    hub_ = &hub;
    auto conn = RedisConnection::Connect(redis_);
    if (!conn) return conn.error();
    reader_conn_ = std::move(*conn);
    if (auto st = LoadWindow(hub); !st.ok()) return st;
    SetUp(true, "");
    reader_ = std::thread([this] { ReadLoop(); });
    publisher_ = std::thread([this] { PublishLoop(); });
    return Status::Ok();
  }

  void Stop() override {
    if (stopped_.exchange(true)) return;
    WakeAllForStop();
    {
      std::lock_guard lock(queue_mu_);
      queue_cv_.notify_all();
    }
    {
      std::lock_guard lock(reader_swap_mu_);
      if (reader_conn_) reader_conn_->Interrupt();
    }
    if (reader_.joinable()) reader_.join();
    if (publisher_.joinable()) publisher_.join();
  }

  void PublishEvent(server::LifecycleEvent e) override {
    const double ts = e.timestamp > 0 ? e.timestamp : UnixSeconds();
    Pending p{server::LifecycleEventData(e, ts),
              e.user_id.empty() ? std::string() : options_.redis_prefix + ":" + e.user_id};
    const size_t bytes = p.data.size() + p.channel.size() + sizeof(Pending);
    Published();
    std::unique_lock lock(queue_mu_);
    // Bounded in bytes: a bus that is down stops its publishers here.
    queue_cv_.wait(lock, [&] {
      return stopping() || queued_bytes_ + bytes <= options_.max_pending_bytes || queue_.empty();
    });
    if (stopping()) {
      lock.unlock();
      Settled(1, false);
      return;
    }
    queued_bytes_ += bytes;
    queue_.push_back(std::move(p));
    queue_cv_.notify_all();
  }

  uint64_t LatestOnBus() override {
    std::lock_guard lock(probe_mu_);
    if (!probe_ || !probe_->ok()) {
      auto conn = RedisConnection::Connect(redis_);
      if (!conn) return 0;
      probe_ = std::move(*conn);
    }
    auto reply = probe_->Command({"GET", seq_key_});
    if (!reply || reply->type != RedisReply::Type::kString) return 0;
    const uint64_t head = StreamId(reply->str);
    if (head != 0) SetHead(head);
    return head;
  }

  bool Healthy(std::string& why) const override { return CommonHealthy(why); }

  void WriteStats(JsonWriter& w) const override {
    w.BeginObject();
    WriteCommonStats(w);
    w.Key("stream").String(stream_key_).Key("channel").String(options_.redis_prefix).EndObject();
  }

 private:
  struct Pending {
    std::string data;
    std::string channel;
  };

  // The last `window` entries of the stream into the hub (for resume).
  Status LoadWindow(server::SseHub& hub) {
    auto reply = reader_conn_->Command({"XREVRANGE", stream_key_, "+", "-", "COUNT", window_});
    if (!reply) return reply.error();
    if (reply->is_error())
      return Error(errc::unavailable, "events bus: XREVRANGE " + stream_key_ + ": " + reply->str);
    uint64_t floor = 0;
    if (reply->elements.empty()) {
      auto seq = reader_conn_->Command({"GET", seq_key_});
      if (!seq) return seq.error();
      if (seq->type == RedisReply::Type::kString) floor = StreamId(seq->str);
    } else {
      uint64_t oldest = 0;
      std::string_view data;
      if (!EntryData(reply->elements.back(), oldest, data))
        return Error(errc::corrupt,
                     "events bus: " + stream_key_ + " holds entries of another kind");
      floor = oldest - 1;
    }
    hub.SetFloor(floor);
    last_received_ = floor;
    for (auto it = reply->elements.rbegin(); it != reply->elements.rend(); ++it) {
      uint64_t id = 0;
      std::string_view data;
      if (EntryData(*it, id, data)) Receive(id, data);
    }
    SetHead(last_received_.load());
    log_->info("events bus: redis stream {} from id {} ({} event(s) loaded, window {})",
               stream_key_, floor + 1, reply->elements.size(), window_);
    return Status::Ok();
  }

  void ReadLoop() {
    auto next_head = std::chrono::steady_clock::now();
    auto backoff = std::chrono::milliseconds(100);
    while (!stopping()) {
      if (!reader_conn_ || !reader_conn_->ok()) {
        auto conn = RedisConnection::Connect(redis_);
        if (!conn) {
          SetUp(false, conn.error().ToString());
          std::this_thread::sleep_for(backoff);
          backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
          continue;
        }
        // Replaced only here, on this thread; Stop interrupts the old one.
        std::lock_guard lock(reader_swap_mu_);
        reader_conn_ = std::move(*conn);
        backoff = std::chrono::milliseconds(100);
      }
      const std::string from = std::to_string(last_received_.load()) + "-0";
      auto reply =
          reader_conn_->Command({"XREAD", "COUNT", std::to_string(kPipelineMax), "BLOCK",
                                 std::to_string(kBlock.count()), "STREAMS", stream_key_, from});
      if (!reply) {
        if (!stopping()) SetUp(false, reply.error().ToString());
        continue;
      }
      if (reply->is_error()) {
        SetUp(false, "XREAD: " + reply->str);
        std::this_thread::sleep_for(backoff);
        continue;
      }
      SetUp(true, "");
      // [[stream, [entry, ...]]] or nil on timeout.
      for (const auto& stream : reply->elements) {
        if (stream.elements.size() != 2) continue;
        for (const auto& entry : stream.elements[1].elements) {
          uint64_t id = 0;
          std::string_view data;
          if (EntryData(entry, id, data)) Receive(id, data);
        }
      }
      if (std::chrono::steady_clock::now() >= next_head) {
        auto seq = reader_conn_->Command({"GET", seq_key_});
        if (seq && seq->type == RedisReply::Type::kString) SetHead(StreamId(seq->str));
        next_head = std::chrono::steady_clock::now() + std::chrono::seconds(1);
      }
    }
  }

  void PublishLoop() {
    std::unique_ptr<RedisConnection> conn;
    std::vector<Pending> batch;  // taken from the queue, not yet on the bus
    auto backoff = std::chrono::milliseconds(100);
    for (;;) {
      if (batch.empty()) {
        std::unique_lock lock(queue_mu_);
        queue_cv_.wait(lock, [&] { return stopping() || !queue_.empty(); });
        if (stopping()) break;
        while (!queue_.empty() && batch.size() < kPipelineMax) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      if (!conn || !conn->ok()) {
        auto opened = RedisConnection::Connect(redis_);
        if (!opened) {
          SetUp(false, opened.error().ToString());
          if (stopping()) break;
          std::this_thread::sleep_for(backoff);
          backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
          continue;
        }
        conn = std::move(*opened);
        backoff = std::chrono::milliseconds(100);
      }
      size_t done = 0;  // replies read: those events are on the bus
      if (SendBatch(*conn, batch, done)) {
        ReleaseQueued(batch);
        batch.clear();
        continue;
      }
      // The connection broke: what has no reply is sent again on a new one
      // (an event whose script ran before the break is then published twice).
      std::vector<Pending> rest(std::make_move_iterator(batch.begin() + static_cast<long>(done)),
                                std::make_move_iterator(batch.end()));
      batch.resize(done);
      ReleaseQueued(batch);
      batch = std::move(rest);
      if (stopping()) break;
    }
    Settled(batch.size(), false);
    std::lock_guard lock(queue_mu_);
    Settled(queue_.size(), false);
    queue_.clear();
  }

  // Pipelines one EVAL per event; `done` counts the replies read. True when
  // every reply came back.
  bool SendBatch(RedisConnection& conn, const std::vector<Pending>& batch, size_t& done) {
    const uint64_t seen = std::max(last_received_.load(), head_.load());
    const std::string restart = std::to_string(seen == 0 ? 0 : seen + kRestartGap);
    for (const auto& p : batch) {
      const std::string_view args[] = {
          "EVAL",  kPublishScript, "2",       stream_key_,           seq_key_,
          window_, p.data,         p.channel, options_.redis_prefix, restart};
      if (!conn.Send(args).ok()) return false;
    }
    if (!conn.Flush().ok()) return false;
    while (done < batch.size()) {
      auto reply = conn.Read(std::chrono::milliseconds(5000));
      if (!reply) {
        SetUp(false, reply.error().ToString());
        return false;
      }
      if (reply->is_error()) {
        log_->error("events bus: an event was not written: {}", reply->str);
        Settled(1, false);
      } else {
        Settled(1, true);
      }
      ++done;
    }
    return true;
  }

  void ReleaseQueued(const std::vector<Pending>& sent) {
    size_t bytes = 0;
    for (const auto& p : sent) bytes += p.data.size() + p.channel.size() + sizeof(Pending);
    std::lock_guard lock(queue_mu_);
    queued_bytes_ -= std::min(queued_bytes_, bytes);
    queue_cv_.notify_all();
  }

  const server::RedisOptions redis_;
  const std::string stream_key_;
  const std::string seq_key_;
  const std::string window_;

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<Pending> queue_;  // guarded by queue_mu_
  size_t queued_bytes_ = 0;    // guarded by queue_mu_: queue_ and the batch in flight

  std::mutex reader_swap_mu_;
  std::unique_ptr<RedisConnection> reader_conn_;
  std::mutex probe_mu_;
  std::unique_ptr<RedisConnection> probe_;  // guarded by probe_mu_
  std::thread reader_;
  std::thread publisher_;
  std::atomic<bool> stopped_{false};
};

}  // namespace

Result<std::unique_ptr<EventBus>> CreateRedisEventBus(const EventBusOptions& options) {
  if (options.redis_url.empty())
    return Error(errc::invalid_argument, "events.bus redis needs events.redis_url (env REDIS_URL)");
  auto redis = server::ParseRedisUrl(options.redis_url);
  if (!redis) return redis.error();
  return std::unique_ptr<EventBus>(std::make_unique<RedisEventBus>(options, std::move(*redis)));
}

}  // namespace embedstream::app
