#include "api/dashboard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <iterator>
#include <string>

#include <gtest/gtest.h>

#include "server/http_server.h"
#include "test_util.h"

namespace embedstream::api {
namespace {

std::string ReadSource() {
  std::ifstream in(embedstream::testing::SourceDir() / "src/api/dashboard/index.html",
                   std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

TEST(DashboardTest, EmbeddedPageIsTheSourceFile) {
  const std::string source = ReadSource();
  ASSERT_FALSE(source.empty()) << "src/api/dashboard/index.html not readable";
  const std::string_view page = DashboardHtml();
  EXPECT_GT(page.size(), 1000u);
  // Not EXPECT_EQ on the strings: a 30 KB diff helps nobody.
  EXPECT_EQ(page.size(), source.size());
  EXPECT_TRUE(page == source) << "rebuild: the embedded page differs from the file";
}

TEST(DashboardTest, IsAWholeHtmlDocument) {
  const std::string page = Lower(DashboardHtml());
  EXPECT_EQ(page.rfind("<!doctype html>", 0), 0u);
  EXPECT_NE(page.find("<meta charset=\"utf-8\">"), std::string::npos);
  EXPECT_NE(page.find("</html>"), std::string::npos);
}

TEST(DashboardTest, LoadsNothingFromOutside) {
  const std::string page = Lower(DashboardHtml());
  // No absolute URLs at all (the machine may be offline), no protocol-relative
  // ones, no external scripts, styles or fonts.
  for (const char* bad : {"http:", "https:", "ws://", "wss://", "src=\"//", "href=\"//", "url(",
                          "@import", "<script src", "<link rel=\"stylesheet\""}) {
    EXPECT_EQ(page.find(bad), std::string::npos) << "found '" << bad << "'";
  }
}

TEST(DashboardTest, NeverWritesMarkupFromData) {
  // Message text is user input: the page builds DOM nodes with textContent.
  const std::string_view page = DashboardHtml();
  for (const char* bad : {"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write"}) {
    EXPECT_EQ(page.find(bad), std::string_view::npos) << "found '" << bad << "'";
  }
}

TEST(DashboardTest, ServedAtRootAsHtml) {
  server::HttpServer http({.host = "127.0.0.1", .port = 0});
  RegisterDashboard(http);
  ASSERT_TRUE(http.Start().ok());
  const std::string resp = embedstream::testing::RawHttpExchange(
      http.port(), "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  http.Stop();
  const size_t head_end = resp.find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos) << resp.substr(0, 200);
  const std::string head = Lower(resp.substr(0, head_end));
  EXPECT_EQ(head.rfind("http/1.1 200", 0), 0u) << head;
  EXPECT_NE(head.find("content-type: text/html; charset=utf-8"), std::string::npos) << head;
  EXPECT_NE(head.find("content-security-policy: default-src 'none'"), std::string::npos) << head;
  EXPECT_TRUE(std::string_view(resp).substr(head_end + 4) == DashboardHtml());
}

}  // namespace
}  // namespace embedstream::api
