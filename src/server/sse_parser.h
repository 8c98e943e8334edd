#pragma once
// SseParser: the client side of Server-Sent Events. Turns the body of a
// text/event-stream, fed in pieces of any size, into events, following the
// WHATWG EventSource rules: lines end in \n, \r\n or \r; "field: value"
// lines (one optional space after the colon); `data` lines are joined with
// \n; a blank line dispatches the event if it has data; ":" lines are
// comments (heartbeats); the last `id` persists until changed.
//
// One parser per stream, used by one thread. After a warm-up it does not
// allocate (its buffers keep their capacity), so a bench can run one per
// connection.
//
// Example:
//   SseParser parser;
//   client.Stream("/events", {}, [&](std::string_view bytes) {
//     parser.Feed(bytes, [](const SseEvent& e) { std::puts(std::string(e.data).c_str()); });
//     return true;
//   });

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace embedstream::server {

// Views into the parser's buffers, valid during the callback only.
struct SseEvent {
  std::string_view id;     // the last event id seen on the stream ("" if none)
  std::string_view event;  // the `event` field; "message" when absent
  std::string_view data;   // the `data` lines joined with \n
};

class SseParser {
 public:
  using Callback = std::function<void(const SseEvent&)>;

  // Parses `bytes` and calls `on_event` for every event completed by them.
  void Feed(std::string_view bytes, const Callback& on_event);

  const std::string& last_event_id() const { return last_id_; }
  // Comment lines seen (": ping" heartbeats, ": connected").
  size_t comments() const { return comments_; }
  // Events dispatched so far.
  size_t events() const { return events_; }

 private:
  void Line(std::string_view line, const Callback& on_event);

  std::string partial_;   // an unterminated line carried over to the next Feed
  bool skip_lf_ = false;  // the last piece ended in \r: a leading \n belongs to it
  std::string event_;
  std::string data_;
  bool has_data_ = false;
  std::string last_id_;
  size_t comments_ = 0;
  size_t events_ = 0;
};

}  // namespace embedstream::server
