// src/client/address.h: the addresses pincerctl, tests and benchmarks dial.
#include <gtest/gtest.h>

#include "client/address.h"

namespace pincer::client {
namespace {

TEST(AddressTest, HostAndPort) {
  auto address = ParseAddress("127.0.0.1:7878");
  ASSERT_TRUE(address.ok());
  EXPECT_EQ(address->kind, Address::Kind::kTcp);
  EXPECT_EQ(address->host, "127.0.0.1");
  EXPECT_EQ(address->port, "7878");
  EXPECT_EQ(address->ToString(), "127.0.0.1:7878");

  auto named = ParseAddress("localhost:1");
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(named->host, "localhost");
}

TEST(AddressTest, BracketedIpv6) {
  auto address = ParseAddress("[::1]:7878");
  ASSERT_TRUE(address.ok());
  EXPECT_EQ(address->host, "::1");
  EXPECT_EQ(address->port, "7878");
  EXPECT_EQ(address->ToString(), "[::1]:7878");
}

TEST(AddressTest, UnixSocket) {
  auto address = ParseAddress("unix:/run/pincer/pincer.sock");
  ASSERT_TRUE(address.ok());
  EXPECT_EQ(address->kind, Address::Kind::kUnix);
  EXPECT_EQ(address->path, "/run/pincer/pincer.sock");
  EXPECT_EQ(address->ToString(), "unix:/run/pincer/pincer.sock");
}

TEST(AddressTest, RefusesMalformedAddresses) {
  for (const char* text : {"", "localhost", ":7878", "host:", "host:0", "host:65536", "host:80x",
                           "::1:7878", "[::1]7878", "[::1", "unix:"}) {
    auto address = ParseAddress(text);
    EXPECT_FALSE(address.ok()) << text;
    if (!address.ok()) {
      EXPECT_EQ(address.error().kind, ErrorKind::kInvalidArgument) << text;
      EXPECT_EQ(address.error().code, "bad_address") << text;
    }
  }
}

}  // namespace
}  // namespace pincer::client
