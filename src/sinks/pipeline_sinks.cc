#include "sinks/pipeline_sinks.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <string_view>

#include "core/clock.h"
#include "core/json_writer.h"
#include "core/logging.h"
#include "pipeline/record.h"

namespace embedstream::sinks {
namespace {

using Clock = std::chrono::steady_clock;
using pipeline::WriteResult;

// The seed 000 fields of a record (chunk fields for a chunk).
pipeline::OutputFields FieldsOf(const pipeline::Record& r, const std::string& chunk_id) {
  pipeline::OutputFields f;
  f.id = r.chunked() ? std::string_view(chunk_id) : std::string_view(r.id);
  f.original_text = r.text;
  f.input_timestamp = r.input_timestamp;
  f.input_source = r.input_source;
  f.chunk = r.chunked();
  f.parent_id = r.id;
  f.chunk_index = r.chunk_index;
  f.chunk_count = r.chunk_count;
  f.char_start = r.char_start;
  f.char_end = r.char_end;
  return f;
}

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
    const std::string chunk_id = r.ChunkId();
    pipeline::OutputFields f = FieldsOf(r, chunk_id);
    f.model_name = options_.model_name;
    f.processing_timestamp = now;
    if (!r.deleted()) pipeline::AppendEmbeddingRecord(value, f, items[i].vector);
    Status st;
    for (;;) {
      // Keyed by the document's id: its chunks stay in one partition, in
      // order; a delete is that key's tombstone.
      st = r.deleted() ? producer_->ProduceTombstone(options_.topic, r.id, base_ + i)
                       : producer_->Produce(options_.topic, r.id, value, {}, base_ + i);
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
    const pipeline::Record& r = *it.record;
    PgRow row;
    row.id = r.id;
    row.text = r.text;
    row.metadata_json = r.metadata_json;
    row.remove = r.deleted();
    if (mode_ != Mode::kText && !row.remove) row.vector.assign(it.vector.begin(), it.vector.end());
    row.chunk_index = r.chunk_index;
    row.chunk_count = r.chunk_count;
    row.char_start = r.char_start;
    row.char_end = r.char_end;
    if (r.chunked() && r.chunk_index == 0) row.document_text = r.DocumentText();
    if (mode_ == Mode::kText) {  // the text table holds whole documents
      row.text = r.DocumentText();
      row.chunk_count = 1;
    }
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

std::string QdrantPointSink::ChunkPayload(const pipeline::Record& r) {
  std::string payload = Payload(r);
  JsonWriter w;
  w.BeginObject().Key("parent_id").String(r.id).Key("chunk_index").Uint(r.chunk_index);
  w.Key("chunk_count").Uint(r.chunk_count);
  if (r.chunked()) w.Key("char_start").Uint(r.char_start).Key("char_end").Uint(r.char_end);
  w.EndObject();
  const std::string_view fields = w.view().substr(1, w.view().size() - 2);
  // Payload() gives an object: insert the fields before its closing brace.
  while (!payload.empty() && payload.back() != '}') payload.pop_back();
  if (payload.size() < 2) payload = "{}";
  payload.pop_back();
  if (payload.find_first_not_of(" \t\r\n", 1) != std::string::npos) payload.push_back(',');
  payload.append(fields);
  payload.push_back('}');
  return payload;
}

WriteResult QdrantPointSink::Write(std::span<const pipeline::SinkItem> items) {
  std::vector<QdrantPoint> points;
  std::vector<size_t> point_item;  // index into items
  points.reserve(items.size());
  // One delete for the batch, a few clauses whatever its size (Qdrant
  // answers each from the parent_id index): the deleted documents (their
  // chunks, and their point by id for points written before chunking
  // existed), and, per chunk count n, the points of the documents written
  // with n chunks whose chunk_count is not n (left from an older version).
  std::vector<std::string_view> deleted;
  std::map<uint32_t, std::vector<std::string_view>> written;  // chunk count -> ids
  for (size_t i = 0; i < items.size(); ++i) {
    const pipeline::Record& r = *items[i].record;
    if (r.deleted()) {
      deleted.push_back(r.id);
      continue;
    }
    if (r.chunk_index == 0) written[r.chunk_count].push_back(r.id);
    points.push_back({r.ChunkId(),
                      std::vector<float>(items[i].vector.begin(), items[i].vector.end()),
                      ChunkPayload(r)});
    point_item.push_back(i);
  }
  const auto parent_in = [](JsonWriter& w, std::span<const std::string_view> ids) {
    w.BeginObject().Key("key").String("parent_id").Key("match").BeginObject().Key("any");
    w.BeginArray();
    for (std::string_view id : ids) w.String(id);
    w.EndArray().EndObject().EndObject();
  };
  std::string drop;
  if (!deleted.empty() || !written.empty()) {
    JsonWriter w;
    w.BeginObject().Key("should").BeginArray();
    if (!deleted.empty()) {
      parent_in(w, deleted);
      w.BeginObject().Key("has_id").BeginArray();
      for (std::string_view id : deleted) w.String(QdrantSink::PointId(std::string(id)));
      w.EndArray().EndObject();
    }
    for (const auto& [count, ids] : written) {
      w.BeginObject().Key("must").BeginArray();
      parent_in(w, ids);
      w.EndArray().Key("must_not").BeginArray();
      w.BeginObject().Key("key").String("chunk_count").Key("match").BeginObject();
      w.Key("value").Uint(count).EndObject().EndObject().EndArray().EndObject();
    }
    w.EndArray().EndObject();
    drop = w.Take();
  }
  auto out = sink_->UpsertAndDelete(points, drop);
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
  for (const auto& rej : out->rejected) r.refused.emplace_back(point_item[rej.index], rej.message);
  return r;
}

WriteResult JsonLinesSink::Write(std::span<const pipeline::SinkItem> items) {
  const double now = UnixSeconds();
  out_.clear();
  for (const auto& it : items) {
    const pipeline::Record& r = *it.record;
    if (r.deleted()) {
      pipeline::AppendDeleteRecord(out_, r.id);
      out_.push_back('\n');
      continue;
    }
    const std::string chunk_id = r.ChunkId();
    pipeline::OutputFields f = FieldsOf(r, chunk_id);
    f.model_name = model_name_;
    f.processing_timestamp = now;
    if (r.input_source.empty()) f.input_source = default_source_;
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
