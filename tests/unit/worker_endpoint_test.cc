// src/worker/endpoint.h: the addresses pincer-worker dials.
#include <gtest/gtest.h>

#include "worker/endpoint.h"

namespace pincer::worker {
namespace {

TEST(ParseEndpointTest, HostAndPort) {
  auto ep = ParseEndpoint("127.0.0.1:7878");
  ASSERT_TRUE(ep.has_value());
  EXPECT_FALSE(ep->is_unix);
  EXPECT_EQ(ep->host, "127.0.0.1");
  EXPECT_EQ(ep->port, "7878");
  EXPECT_EQ(ep->ToString(), "127.0.0.1:7878");
  EXPECT_EQ(ParseEndpoint("pincer.internal:1")->host, "pincer.internal");
}

TEST(ParseEndpointTest, BracketedIpv6) {
  auto ep = ParseEndpoint("[::1]:7878");
  ASSERT_TRUE(ep.has_value());
  EXPECT_EQ(ep->host, "::1");
  EXPECT_EQ(ep->ToString(), "[::1]:7878");
}

TEST(ParseEndpointTest, UnixSocket) {
  auto ep = ParseEndpoint("unix:/run/pincer.sock");
  ASSERT_TRUE(ep.has_value());
  EXPECT_TRUE(ep->is_unix);
  EXPECT_EQ(ep->path, "/run/pincer.sock");
  EXPECT_EQ(ep->ToString(), "unix:/run/pincer.sock");
}

TEST(ParseEndpointTest, Refused) {
  for (const char* bad : {"", "localhost", ":7878", "host:", "host:0", "host:65536", "host:12ab",
                          "::1:7878", "unix:", "host:-1"}) {
    EXPECT_FALSE(ParseEndpoint(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace pincer::worker
