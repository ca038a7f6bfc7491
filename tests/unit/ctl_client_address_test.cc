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
                           "::1:7878", "[::1]7878", "[::1", "unix:", "host:12ab", "host:-1"}) {
    auto address = ParseAddress(text);
    EXPECT_FALSE(address.ok()) << text;
    if (!address.ok()) {
      EXPECT_EQ(address.error().kind, ErrorKind::kInvalidArgument) << text;
      EXPECT_EQ(address.error().code, "bad_address") << text;
    }
  }
}

TEST(AddressListTest, OneOrSeveralInOrder) {
  auto one = ParseAddressList("127.0.0.1:7878");
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].ToString(), "127.0.0.1:7878");

  auto three = ParseAddressList("10.0.0.1:7878, [::1]:7879 ,unix:/run/pincer.sock");
  ASSERT_TRUE(three.ok()) << three.error().message;
  ASSERT_EQ(three->size(), 3u);
  EXPECT_EQ((*three)[0].ToString(), "10.0.0.1:7878");
  EXPECT_EQ((*three)[1].ToString(), "[::1]:7879");
  EXPECT_EQ((*three)[2].ToString(), "unix:/run/pincer.sock");
}

TEST(AddressListTest, RefusesEmptyOrBadElements) {
  for (const char* text : {"", ",", "a:1,", ",a:1", "a:1,,b:2", "a:1, ", "a:1,localhost"}) {
    auto list = ParseAddressList(text);
    EXPECT_FALSE(list.ok()) << text;
    if (!list.ok()) {
      EXPECT_EQ(list.error().code, "bad_address") << text;
    }
  }
}

}  // namespace
}  // namespace pincer::client
