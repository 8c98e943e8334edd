#include "sinks/pipeline_sinks.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "core/clock.h"
#include "core/json_writer.h"
#include "core/logging.h"
#include "pipeline/record.h"

namespace embedstream::sinks {
namespace {

using Clock = std::chrono::steady_clock;
using pipeline::WriteResult;

}  // namespace

Result<std::unique_ptr<KafkaTopicSink>> KafkaTopicSink::Create(Options options) {
  std::unique_ptr<KafkaTopicSink> self(new KafkaTopicSink(std::move(options)));
  KafkaTopicSink* s = self.get();
  auto producer = KafkaProducer::Create(s->options_.producer, [s](const DeliveryReport& r) {
    if (r.token < s->base_ || r.token - s->base_ >= s->deliveries_.size()) return;  // stale
    Delivery& d = s->deliveries_[r.token - s->base_];
    d.done = true;
    d.ok = r.ok;
    d.permanent = r.permanent;
    d.error = r.error;
  });
  if (!producer) return producer.error();
  s->producer_ = std::move(*producer);
  return self;
}

KafkaTopicSink::~KafkaTopicSink() {
  producer_.reset();  // its final flush reports into deliveries_, still alive here
}

WriteResult KafkaTopicSink::Write(std::span<const pipeline::SinkItem> items) {
  // Tokens of this call: base_ .. base_ + n - 1; reports of earlier calls
  // (timed out) fall outside and are ignored.
  base_ += deliveries_.size();
  deliveries_.assign(items.size(), Delivery{});
  const double now = UnixSeconds();
  std::string value;
  WriteResult out;
  for (size_t i = 0; i < items.size(); ++i) {
    const pipeline::Record& r = *items[i].record;
    if (delivered_.count(&r) != 0) {
      deliveries_[i] = Delivery{true, true, false, {}};
      continue;
    }
    value.clear();
    pipeline::OutputFields f;
    f.id = r.id;
    f.original_text = r.text;
    f.model_name = options_.model_name;
    f.input_timestamp = r.input_timestamp;
    f.processing_timestamp = now;
    f.input_source = r.input_source;
    pipeline::AppendEmbeddingRecord(value, f, items[i].vector);
    Status st;
    for (;;) {
      st = producer_->Produce(options_.topic, r.id, value, {}, base_ + i);
      if (st.ok() || st.error().code != errc::unavailable) break;
      producer_->Poll(50);  // the local queue is full: let deliveries drain
    }
    if (!st.ok()) {
      // Refused before sending: too large for message.max.bytes is this
      // record's fault; any other refusal is the producer's (kUnavailable).
      deliveries_[i] =
          Delivery{true, false, st.error().code == errc::invalid_argument, st.error().message};
    }
  }
  const auto until = Clock::now() + std::chrono::milliseconds(options_.delivery_wait_ms);
  for (;;) {
    bool all = true;
    for (const auto& d : deliveries_) all = all && d.done;
    if (all) break;
    if (Clock::now() >= until) {
      for (size_t i = 0; i < items.size(); ++i) {
        if (deliveries_[i].done && deliveries_[i].ok) delivered_.insert(items[i].record);
      }
      return WriteResult::Unavailable("output records not acknowledged by the broker in " +
                                      std::to_string(options_.delivery_wait_ms) + " ms");
    }
    producer_->Poll(20);
  }
  std::string error;
  for (size_t i = 0; i < items.size(); ++i) {
    const Delivery& d = deliveries_[i];
    if (d.ok) {
      delivered_.insert(items[i].record);
    } else if (d.permanent) {
      out.refused.emplace_back(i, d.error);  // this record is too large for the topic
    } else {
      error = d.error;
    }
  }
  if (!error.empty()) {
    return WriteResult::Unavailable("producing to " + options_.topic + ": " + error);
  }
  delivered_.clear();
  return out;
}

WriteResult PgvectorSink::Write(std::span<const pipeline::SinkItem> items) {
  std::vector<PgRow> rows;
  rows.reserve(items.size());
  for (const auto& it : items) {
    PgRow row{it.record->id, it.record->text, it.record->metadata_json, {}};
    if (mode_ != Mode::kText) row.vector.assign(it.vector.begin(), it.vector.end());
    rows.push_back(std::move(row));
  }
  auto upsert = [&](std::span<const PgRow> part) {
    switch (mode_) {
      case Mode::kText:
        return sink_->UpsertText(part);
      case Mode::kVectors:
        return sink_->UpsertVectors(part);
      case Mode::kEmbeddings:
        break;
    }
    return sink_->Upsert(part);
  };
  auto n = upsert(rows);
  if (n.ok()) return WriteResult::Ok();
  if (n.error().code != errc::invalid_argument) return WriteResult::Unavailable(n.error().message);
  // Refused: find the rows it refuses, one by one; the others are written.
  WriteResult out;
  for (size_t i = 0; i < rows.size(); ++i) {
    auto one = upsert(std::span(rows).subspan(i, 1));
    if (one.ok()) continue;
    if (one.error().code != errc::invalid_argument) {
      return WriteResult::Unavailable(one.error().message);
    }
    out.refused.emplace_back(i, one.error().message);
  }
  return out;
}

std::string QdrantPointSink::Payload(const pipeline::Record& r) {
  if (r.mapped) return r.metadata_json;
  JsonWriter text;
  text.String(r.text);
  std::string meta = r.metadata_json.empty() ? "{}" : r.metadata_json;
  while (!meta.empty() && meta.back() != '}') meta.pop_back();  // trailing space
  if (meta.size() >= 2 && meta.front() == '{') {
    meta.pop_back();
    const bool empty = meta.find_first_not_of(" \t\r\n", 1) == std::string::npos;
    return meta + (empty ? "" : ",") + "\"text\":" + text.Take() + "}";
  }
  return "{\"text\":" + text.Take() + "}";
}

WriteResult QdrantPointSink::Write(std::span<const pipeline::SinkItem> items) {
  std::vector<QdrantPoint> points;
  points.reserve(items.size());
  for (const auto& it : items) {
    points.push_back({it.record->id, std::vector<float>(it.vector.begin(), it.vector.end()),
                      Payload(*it.record)});
  }
  auto out = sink_->Upsert(points);
  if (!out) {
    // 413, or a large body cut off in transit: split (one point alone is
    // too large only on a 413; cut off, it is the sink's fault).
    if (sink_->last_http_status() == 413 ||
        (items.size() > 1 && sink_->last_failure_may_be_size())) {
      return WriteResult::TooLarge(out.error().message);
    }
    return WriteResult::Unavailable(out.error().message);
  }
  WriteResult r;
  for (const auto& rej : out->rejected) r.refused.emplace_back(rej.index, rej.message);
  return r;
}

WriteResult JsonLinesSink::Write(std::span<const pipeline::SinkItem> items) {
  const double now = UnixSeconds();
  out_.clear();
  for (const auto& it : items) {
    const pipeline::Record& r = *it.record;
    pipeline::OutputFields f;
    f.id = r.id;
    f.original_text = r.text;
    f.model_name = model_name_;
    f.input_timestamp = r.input_timestamp;
    f.processing_timestamp = now;
    f.input_source = r.input_source.empty() ? std::string_view(default_source_)
                                            : std::string_view(r.input_source);
    pipeline::AppendEmbeddingRecord(out_, f, it.vector);
    out_.push_back('\n');
  }
  size_t off = 0;
  while (off < out_.size()) {
    const ssize_t n = ::write(fd_, out_.data() + off, out_.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EPIPE) return WriteResult::Ok();  // the reader is gone
      return WriteResult::Unavailable(std::string("writing output: ") + std::strerror(errno));
    }
    off += static_cast<size_t>(n);
  }
  return WriteResult::Ok();
}

}  // namespace embedstream::sinks
