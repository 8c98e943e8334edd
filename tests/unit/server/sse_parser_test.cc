#include "server/sse_parser.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace embedstream::server {
namespace {

struct Seen {
  std::string id, event, data;
};

std::vector<Seen> ParseInPieces(std::string_view stream, size_t piece) {
  SseParser parser;
  std::vector<Seen> out;
  for (size_t i = 0; i < stream.size(); i += piece) {
    parser.Feed(stream.substr(i, piece), [&](const SseEvent& e) {
      out.push_back({std::string(e.id), std::string(e.event), std::string(e.data)});
    });
  }
  return out;
}

TEST(SseParser, ParsesFramesFedInPiecesOfAnySize) {
  const std::string stream =
      ": connected\n\n"
      "id: 1\nevent: message_received\ndata: {\"a\":1}\n\n"
      ": ping\n\n"
      "id: 2\r\nevent: stage_completed\r\ndata: {\"stage\":2}\r\n\r\n"
      "data: line one\rdata:line two\r\r"
      "event: reset\ndata: {}\n\n";
  for (size_t piece : {1u, 2u, 3u, 7u, 1000u}) {
    const auto seen = ParseInPieces(stream, piece);
    ASSERT_EQ(seen.size(), 4u) << "piece " << piece;
    EXPECT_EQ(seen[0].id, "1");
    EXPECT_EQ(seen[0].event, "message_received");
    EXPECT_EQ(seen[0].data, "{\"a\":1}");
    EXPECT_EQ(seen[1].id, "2");
    EXPECT_EQ(seen[1].event, "stage_completed");
    EXPECT_EQ(seen[2].event, "message");  // no event field
    EXPECT_EQ(seen[2].data, "line one\nline two");
    EXPECT_EQ(seen[2].id, "2");  // the last id persists
    EXPECT_EQ(seen[3].event, "reset");
  }
}

TEST(SseParser, CountsCommentsAndSkipsEventsWithoutData) {
  SseParser parser;
  int events = 0;
  parser.Feed(": connected\n\nevent: nothing\n\n: ping\n\nid: 9\n\n",
              [&](const SseEvent&) { ++events; });
  EXPECT_EQ(events, 0);
  EXPECT_EQ(parser.comments(), 2u);
  EXPECT_EQ(parser.last_event_id(), "9");
  parser.Feed("data: x\n", [&](const SseEvent&) { ++events; });
  EXPECT_EQ(events, 0);  // not yet terminated by a blank line
  parser.Feed("\n", [&](const SseEvent&) { ++events; });
  EXPECT_EQ(events, 1);
  EXPECT_EQ(parser.events(), 1u);
}

}  // namespace
}  // namespace embedstream::server
