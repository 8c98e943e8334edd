#include "app/source_pipeline.h"

#include <algorithm>
#include <map>

#include "core/clock.h"
#include "core/logging.h"

namespace embedstream::app {
namespace {

double StateValue(pipeline::CircuitBreaker::State s) {
  return s == pipeline::CircuitBreaker::State::kClosed     ? 0.0
         : s == pipeline::CircuitBreaker::State::kHalfOpen ? 1.0
                                                           : 2.0;
}

// Every pipeline of the process, for the one metrics collector (metric
// families must not repeat in an exposition).
std::mutex g_sets_mu;
std::vector<const PipelineSet*> g_sets;

void CollectMetrics(std::string& out) {
  std::lock_guard lock(g_sets_mu);
  std::vector<const SourcePipeline*> all;
  for (const auto* set : g_sets) {
    for (const auto& p : set->all()) all.push_back(p.get());
  }
  if (all.empty()) return;
  struct Family {
    const char* name;
    const char* help;
    const char* type;
  };
  auto source_family = [&](const Family& f, auto value) {
    AppendMetricHeader(out, f.name, f.help, f.type);
    for (const auto* p : all) AppendSample(out, f.name, {{"source", p->name()}}, value(*p));
  };
  AppendMetricHeader(out, "embedstream_source_records_total",
                     "Records per source and outcome: read, embedded, stored (every sink has "
                     "it), rejected (dead letters), acked",
                     "counter");
  for (const auto* p : all) {
    const auto& s = p->stats();
    const std::pair<const char*, uint64_t> outcomes[] = {{"read", s.read.load()},
                                                         {"embedded", s.embedded.load()},
                                                         {"stored", s.stored.load()},
                                                         {"rejected", s.rejected.load()},
                                                         {"acked", s.acked.load()}};
    for (const auto& [outcome, v] : outcomes) {
      AppendSample(out, "embedstream_source_records_total",
                   {{"source", p->name()}, {"outcome", outcome}}, static_cast<double>(v));
    }
  }
  AppendMetricHeader(out, "embedstream_source_chunking_total",
                     "Texts longer than the model per source and outcome: chunked (documents "
                     "cut), chunks (what they became), truncated, rejected_too_long; and "
                     "deleted (delete operations every sink has)",
                     "counter");
  for (const auto* p : all) {
    const auto& s = p->stats();
    const std::pair<const char*, uint64_t> outcomes[] = {
        {"chunked", s.chunked.load()},
        {"chunks", s.chunks.load()},
        {"truncated", s.truncated.load()},
        {"rejected_too_long", p->rejected_too_long()},
        {"deleted", s.deleted.load()}};
    for (const auto& [outcome, v] : outcomes) {
      AppendSample(out, "embedstream_source_chunking_total",
                   {{"source", p->name()}, {"outcome", outcome}}, static_cast<double>(v));
    }
  }
  source_family({"embedstream_source_batches_total", "Encoder batches per source", "counter"},
                [](const SourcePipeline& p) { return static_cast<double>(p.stats().batches); });
  source_family(
      {"embedstream_source_inflight_records", "Records read and not yet acknowledged", "gauge"},
      [](const SourcePipeline& p) {
        return static_cast<double>(p.stats().inflight_records.load());
      });
  source_family(
      {"embedstream_source_inflight_bytes", "Their bytes", "gauge"},
      [](const SourcePipeline& p) { return static_cast<double>(p.stats().inflight_bytes.load()); });
  source_family({"embedstream_source_paused", "1 while intake is paused for backpressure", "gauge"},
                [](const SourcePipeline& p) { return p.stats().paused.load() ? 1.0 : 0.0; });
  auto sink_family = [&](const Family& f, auto value) {
    AppendMetricHeader(out, f.name, f.help, f.type);
    for (const auto* p : all) {
      for (const auto* g : p->guards()) {
        AppendSample(out, f.name, {{"source", p->name()}, {"sink", g->name()}}, value(*g));
      }
    }
  };
  sink_family({"embedstream_sink_circuit_state",
               "Circuit breaker per sink: 0 closed, 1 half-open, 2 open", "gauge"},
              [](const pipeline::SinkGuard& g) { return StateValue(g.breaker().state()); });
  sink_family(
      {"embedstream_sink_circuit_opened_total", "Times the sink's circuit breaker opened",
       "counter"},
      [](const pipeline::SinkGuard& g) { return static_cast<double>(g.breaker().opened_total()); });
  AppendMetricHeader(out, "embedstream_sink_records_total",
                     "Records per sink and outcome (written, refused for good)", "counter");
  for (const auto* p : all) {
    for (const auto* g : p->guards()) {
      AppendSample(out, "embedstream_sink_records_total",
                   {{"source", p->name()}, {"sink", g->name()}, {"outcome", "written"}},
                   static_cast<double>(g->stats().written.load()));
      AppendSample(out, "embedstream_sink_records_total",
                   {{"source", p->name()}, {"sink", g->name()}, {"outcome", "refused"}},
                   static_cast<double>(g->stats().refused.load()));
    }
  }
  sink_family(
      {"embedstream_sink_errors_total", "Writes that found the sink unavailable (each retried)",
       "counter"},
      [](const pipeline::SinkGuard& g) { return static_cast<double>(g.stats().errors.load()); });
  sink_family(
      {"embedstream_sink_splits_total", "Batches split after a size refusal", "counter"},
      [](const pipeline::SinkGuard& g) { return static_cast<double>(g.stats().splits.load()); });
}

}  // namespace

SourcePipeline::SourcePipeline(std::unique_ptr<pipeline::Source> source,
                               std::vector<std::unique_ptr<pipeline::Sink>> sinks,
                               pipeline::Embedder* embedder, SourcePipelineOptions options)
    : source_(std::move(source)), sinks_(std::move(sinks)) {
  std::vector<pipeline::Sink*> raw;
  auto& reg = MetricsRegistry::Global();
  const std::string& src = source_->name();
  for (auto& s : sinks_) {
    raw.push_back(s.get());
    sink_latency_.emplace_back(
        s->name(),
        &reg.GetHistogram("embedstream_sink_write_seconds", "One write of a batch to a sink",
                          LatencyBucketsSeconds(), {{"source", src}, {"sink", s->name()}}));
  }
  source_name_ = src;
  e2e_latency_ = &reg.GetHistogram("embedstream_end_to_end_latency_seconds",
                                   "Input record timestamp to stored in every sink",
                                   LatencyBucketsSeconds(), {{"source", src}});
  embed_latency_ =
      &reg.GetHistogram("embedstream_stage_latency_seconds", "Time spent per stage and batch",
                        LatencyBucketsSeconds(), {{"source", src}, {"stage", "embed"}});
  batch_size_ = &reg.GetHistogram("embedstream_batch_size_records", "Records per encoder batch",
                                  ExponentialBuckets(1, 2, 14), {{"source", src}});
  batch_tokens_ = &reg.GetHistogram("embedstream_batch_size_tokens", "Tokens per encoder batch",
                                    ExponentialBuckets(16, 2, 12), {{"source", src}});
  const bool embed = options.runtime.embed && embedder != nullptr;
  runtime_ = std::make_unique<pipeline::Runtime>(*source_, embed ? embedder : nullptr,
                                                 std::move(raw), options.runtime);
  lifecycle_ = std::make_unique<LifecycleListener>(options.hub, options.model_name, options.dim,
                                                   options.completes, options.announce_received);
  runtime_->AddListener(lifecycle_.get());
  runtime_->AddListener(this);
}

SourcePipeline::~SourcePipeline() {
  Stop();
  runtime_.reset();  // its threads first: they use the sinks and the source
  sinks_.clear();
  source_.reset();
}

void SourcePipeline::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Run(stop_); });
}

void SourcePipeline::Run(const std::atomic<bool>& stop) {
  std::string names;
  for (const auto& s : sinks_) names += (names.empty() ? "" : ", ") + s->name();
  GetLogger("pipeline")->info("{} -> [{}]", name(), names);
  runtime_->Run(stop);
  source_->Close();
  const auto& st = runtime_->stats();
  GetLogger("pipeline")
      ->info("{} stopped: read {}, stored {}, dead letters {}", name(), st.read.load(),
             st.stored.load(), st.rejected.load());
}

void SourcePipeline::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

std::vector<std::string> SourcePipeline::sink_names() const {
  std::vector<std::string> out;
  for (const auto& s : sinks_) out.push_back(s->name());
  return out;
}

void SourcePipeline::WriteSourceJson(JsonWriter& w) const {
  const auto& s = runtime_->stats();
  w.BeginObject()
      .Key("read")
      .Uint(s.read.load())
      .Key("embedded")
      .Uint(s.embedded.load())
      .Key("stored")
      .Uint(s.stored.load())
      .Key("rejected")
      .Uint(s.rejected.load())
      .Key("acked")
      .Uint(s.acked.load())
      .Key("deleted")
      .Uint(s.deleted.load())
      .Key("chunked")
      .Uint(s.chunked.load())
      .Key("chunks")
      .Uint(s.chunks.load())
      .Key("truncated")
      .Uint(s.truncated.load())
      .Key("rejected_too_long")
      .Uint(rejected_too_long())
      .Key("batches")
      .Uint(s.batches.load())
      .Key("average_batch_size")
      .Double(s.average_batch_records())
      .Key("inflight_records")
      .Int(s.inflight_records.load())
      .Key("inflight_bytes")
      .Int(s.inflight_bytes.load())
      .Key("paused")
      .Bool(s.paused.load())
      .Key("running")
      .Bool(s.running.load())
      .Key("sinks")
      .BeginArray();
  for (const auto& n : sink_names()) w.String(n);
  w.EndArray().EndObject();
}

void SourcePipeline::OnBatch(size_t records, size_t tokens, std::chrono::duration<double> took) {
  embed_latency_->Observe(took.count());
  batch_size_->Observe(static_cast<double>(records));
  batch_tokens_->Observe(static_cast<double>(tokens));
}

void SourcePipeline::OnStored(const pipeline::Record& r) {
  if (r.input_timestamp > 0) {
    e2e_latency_->Observe(std::max(0.0, UnixSeconds() - r.input_timestamp));
  }
}

std::vector<SourcePipeline::DeadLetterNote> SourcePipeline::recent_dead_letters() const {
  std::lock_guard lock(recent_mu_);
  return {recent_.begin(), recent_.end()};
}

void SourcePipeline::OnRejected(const pipeline::Record& r, const pipeline::Rejection& why) {
  {
    // The detail is for people and may be long (a parser's message): 200 bytes
    // are kept, cut at a UTF-8 boundary.
    constexpr size_t kMaxDetail = 200;
    size_t cut = std::min(why.detail.size(), kMaxDetail);
    while (cut > 0 && cut < why.detail.size() &&
           (static_cast<unsigned char>(why.detail[cut]) & 0xC0) == 0x80) {
      --cut;
    }
    std::lock_guard lock(recent_mu_);
    recent_.push_front(
        {UnixSeconds(), source_name_, r.id, why.reason, why.stage, why.detail.substr(0, cut)});
    if (recent_.size() > kRecentDeadLetters) recent_.pop_back();
  }
  // Reasons and stages are stable codes (a small set), so the labels stay bounded.
  MetricsRegistry::Global()
      .GetCounter("embedstream_dead_letters_total",
                  "Records written to the dead letters (DLQ topic, failed rows, error lines), by "
                  "reason and the stage that refused them.",
                  {{"source", source_name_}, {"reason", why.reason}, {"stage", why.stage}})
      .Inc();
}

void SourcePipeline::OnSinkWrite(const std::string& sink, size_t /*items*/,
                                 std::chrono::duration<double> took) {
  for (const auto& [n, h] : sink_latency_) {
    if (n == sink) h->Observe(took.count());
  }
}

PipelineSet::PipelineSet() {
  static const bool registered = [] {
    MetricsRegistry::Global().AddCollector(CollectMetrics);
    return true;
  }();
  (void)registered;
  std::lock_guard lock(g_sets_mu);
  g_sets.push_back(this);
}

PipelineSet::~PipelineSet() {
  StopAll();
  std::lock_guard lock(g_sets_mu);
  g_sets.erase(std::remove(g_sets.begin(), g_sets.end(), this), g_sets.end());
}

void PipelineSet::Add(std::unique_ptr<SourcePipeline> p) {
  std::lock_guard lock(g_sets_mu);
  pipelines_.push_back(std::move(p));
}

SourcePipeline* PipelineSet::Find(const std::string& source) const {
  for (const auto& p : pipelines_) {
    if (p->name() == source) return p.get();
  }
  return nullptr;
}

bool PipelineSet::running() const {
  return std::all_of(pipelines_.begin(), pipelines_.end(),
                     [](const auto& p) { return p->running(); });
}

void PipelineSet::StartAll() {
  for (auto& p : pipelines_) p->Start();
}

void PipelineSet::StopAll(const std::vector<std::string>& order) {
  for (const auto& name : order) {
    if (auto* p = Find(name)) p->Stop();
  }
  for (auto& p : pipelines_) p->Stop();
}

void PipelineSet::WriteDeadLetters(JsonWriter& w) const {
  uint64_t total = 0;
  std::vector<SourcePipeline::DeadLetterNote> recent;
  for (const auto& p : pipelines_) {
    total += p->stats().rejected.load();
    auto mine = p->recent_dead_letters();
    recent.insert(recent.end(), std::make_move_iterator(mine.begin()),
                  std::make_move_iterator(mine.end()));
  }
  std::stable_sort(recent.begin(), recent.end(),
                   [](const auto& a, const auto& b) { return a.time > b.time; });
  if (recent.size() > SourcePipeline::kRecentDeadLetters) {
    recent.resize(SourcePipeline::kRecentDeadLetters);
  }
  w.Key("dead_letters").BeginObject().Key("total").Uint(total).Key("recent").BeginArray();
  for (const auto& d : recent) {
    w.BeginObject()
        .Key("time")
        .Double(d.time)
        .Key("source")
        .String(d.source)
        .Key("id")
        .String(d.id)
        .Key("reason")
        .String(d.reason)
        .Key("stage")
        .String(d.stage)
        .Key("detail")
        .String(d.detail)
        .EndObject();
  }
  w.EndArray().EndObject();
}

void PipelineSet::WriteJson(JsonWriter& w) const {
  w.Key("sources").BeginObject();
  for (const auto& p : pipelines_) {
    w.Key(p->name());
    p->WriteSourceJson(w);
  }
  w.EndObject();
  // Chunking and deletes over every source (each source has its own above).
  uint64_t chunked = 0, chunks = 0, truncated = 0, too_long = 0, deleted = 0;
  for (const auto& p : pipelines_) {
    const auto& s = p->stats();
    chunked += s.chunked.load();
    chunks += s.chunks.load();
    truncated += s.truncated.load();
    too_long += p->rejected_too_long();
    deleted += s.deleted.load();
  }
  w.Key("chunked").Uint(chunked).Key("chunks").Uint(chunks).Key("truncated").Uint(truncated);
  w.Key("rejected_too_long").Uint(too_long).Key("deleted").Uint(deleted);
  WriteDeadLetters(w);
  struct Sum {
    pipeline::CircuitBreaker::State state = pipeline::CircuitBreaker::State::kClosed;
    uint64_t opened_total = 0, rejected_calls = 0, written = 0, refused = 0, writes = 0, errors = 0,
             retries = 0, splits = 0;
    int consecutive_failures = 0;
    bool available = true;
    std::vector<std::string> sources;
  };
  std::vector<std::pair<std::string, Sum>> sums;  // in first-seen order
  for (const auto& p : pipelines_) {
    for (const auto* g : p->guards()) {
      auto it = std::find_if(sums.begin(), sums.end(),
                             [&](const auto& e) { return e.first == g->name(); });
      if (it == sums.end()) it = sums.insert(sums.end(), {g->name(), Sum{}});
      Sum& s = it->second;
      const auto b = g->breaker().stats();
      const auto& c = g->stats();
      if (StateValue(b.state) > StateValue(s.state)) s.state = b.state;
      s.opened_total += b.opened_total;
      s.rejected_calls += b.rejected_calls;
      s.consecutive_failures = std::max(s.consecutive_failures, b.consecutive_failures);
      s.available = s.available && c.available.load();
      s.written += c.written.load();
      s.refused += c.refused.load();
      s.writes += c.writes.load();
      s.errors += c.errors.load();
      s.retries += c.retries.load();
      s.splits += c.splits.load();
      s.sources.push_back(p->name());
    }
  }
  w.Key("sinks").BeginObject();
  for (const auto& [name, s] : sums) {
    w.Key(name)
        .BeginObject()
        .Key("state")
        .String(pipeline::StateName(s.state))
        .Key("opened_total")
        .Uint(s.opened_total)
        .Key("rejected_calls")
        .Uint(s.rejected_calls)
        .Key("consecutive_failures")
        .Int(s.consecutive_failures)
        .Key("available")
        .Bool(s.available)
        .Key("written")
        .Uint(s.written)
        .Key("refused")
        .Uint(s.refused)
        .Key("writes")
        .Uint(s.writes)
        .Key("errors")
        .Uint(s.errors)
        .Key("retries")
        .Uint(s.retries)
        .Key("splits")
        .Uint(s.splits)
        .Key("sources")
        .BeginArray();
    for (const auto& src : s.sources) w.String(src);
    w.EndArray().EndObject();
  }
  w.EndObject();
}

}  // namespace embedstream::app
