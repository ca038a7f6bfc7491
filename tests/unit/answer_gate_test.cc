// The durable-answer gate (src/daemon/answer_gate.h): what a client is told
// goes out only once the store take it needs is durable, in the order it
// was written; a failed write turns its submits' `ok` into
// store_unavailable.
#include "daemon/answer_gate.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

namespace pincer {
namespace {

class AnswerGateTest : public ::testing::Test {
 protected:
  // What each connection was sent, and how often the gate said so.
  std::map<ConnId, std::string> sent_;
  std::map<ConnId, int> flushes_;
  std::set<ConnId> gone_;
  std::vector<SubmitAck> forgotten_;
  AnswerGate gate_{
      [this](ConnId c) -> std::string* { return gone_.count(c) ? nullptr : &sent_[c]; },
      [this](ConnId c) { ++flushes_[c]; }};

  void Refuse() {
    gate_.Refuse(Status("io_error", "disk full"),
                 [this](const SubmitAck& a) { forgotten_.push_back(a); });
  }
};

TEST_F(AnswerGateTest, LinesWaitForTheTakeTheyNeed) {
  gate_.Lines(1, 5) += "a\n";
  gate_.Lines(1, 6) += "b\n";
  gate_.Lines(2, 6) += "c\n";
  gate_.Durable(4);
  EXPECT_EQ(sent_[1], "");
  EXPECT_EQ(flushes_[1], 0);
  gate_.Durable(5);
  EXPECT_EQ(sent_[1], "a\n");
  EXPECT_EQ(sent_[2], "");
  gate_.Durable(6);
  EXPECT_EQ(sent_[1], "a\nb\n");
  EXPECT_EQ(sent_[2], "c\n");
  EXPECT_EQ(gate_.Held(1), 0u);
  EXPECT_EQ(gate_.Held(2), 0u);
}

TEST_F(AnswerGateTest, AcceptedSubmitIsAnsweredOkInOrderWithTheOtherLines) {
  gate_.Lines(1, 3) += "before\n";
  gate_.Accepted(1, 3, SubmitAck{7, 42, false, ""}, 100);
  gate_.EndLines(1, 4, 7) += "end\n";
  EXPECT_GE(gate_.Held(1), 100u);  // the submit's weight counts until answered
  gate_.Durable(3);
  EXPECT_EQ(sent_[1], "before\n{\"type\":\"ok\",\"req\":7,\"id\":\"t42\",\"existing\":false}\n");
  EXPECT_EQ(gate_.Held(1), 4u);  // "end\n" waits for take 4
  gate_.Durable(4);
  EXPECT_EQ(sent_[1],
            "before\n{\"type\":\"ok\",\"req\":7,\"id\":\"t42\",\"existing\":false}\nend\n");
  EXPECT_TRUE(forgotten_.empty());
}

TEST_F(AnswerGateTest, WarningAndExistingShowInTheOk) {
  gate_.Accepted(1, 1, SubmitAck{1, 2, true, ""}, 0);
  gate_.Accepted(1, 1, SubmitAck{2, 3, false, "no worker offers [gpu]"}, 0);
  gate_.Durable(1);
  EXPECT_EQ(sent_[1],
            "{\"type\":\"ok\",\"req\":1,\"id\":\"t2\",\"existing\":true}\n"
            "{\"type\":\"ok\",\"req\":2,\"id\":\"t3\",\"existing\":false,"
            "\"warning\":\"no worker offers [gpu]\"}\n");
}

TEST_F(AnswerGateTest, FailedWriteRefusesSubmitsDropsTheirEndsAndSendsTheRest) {
  gate_.Lines(1, 2) += "status\n";
  gate_.Accepted(1, 2, SubmitAck{5, 9, false, ""}, 50);
  gate_.EndLines(1, 2, 5) += "end of 5\n";
  gate_.EndLines(1, 2, 6) += "end of 6\n";  // another request: kept
  gate_.Accepted(2, 3, SubmitAck{1, 10, true, ""}, 50);
  Refuse();
  // In order; the refused submit's end is not sent, another request's is.
  EXPECT_EQ(sent_[1],
            "status\n"
            "{\"type\":\"error\",\"code\":\"store_unavailable\",\"message\":\"not accepted: "
            "disk full\",\"req\":5}\n"
            "end of 6\n");
  ASSERT_EQ(forgotten_.size(), 2u);
  EXPECT_EQ(forgotten_[0].id, 9u);
  EXPECT_FALSE(forgotten_[0].existing);
  EXPECT_EQ(forgotten_[1].id, 10u);
  EXPECT_TRUE(forgotten_[1].existing);
  EXPECT_EQ(gate_.Held(1), 0u);
  EXPECT_EQ(gate_.Held(2), 0u);
  // Nothing is left to go out twice.
  const std::string before = sent_[1];
  gate_.Durable(100);
  EXPECT_EQ(sent_[1], before);
}

TEST_F(AnswerGateTest, EndsWrittenWhileForgettingARefusedTaskGoOnlyToOtherWaiters) {
  gate_.Accepted(1, 4, SubmitAck{2, 50, false, ""}, 0);
  gate_.Lines(3, 4) += "other\n";
  // Forgetting task 50 cancels it: its waiters hear of the end, the
  // submitter on request 2 (refused) and a client 3 that waits on it too.
  gate_.Refuse(Status("io_error", "disk full"), [this](const SubmitAck& a) {
    forgotten_.push_back(a);
    gate_.EndLines(1, 5, a.req) += "end of 50 for 1\n";
    gate_.EndLines(3, 5, 8) += "end of 50 for 3\n";
  });
  EXPECT_EQ(sent_[1].find("end of 50"), std::string::npos);
  EXPECT_NE(sent_[1].find("store_unavailable"), std::string::npos);
  EXPECT_EQ(sent_[3], "other\nend of 50 for 3\n");
  EXPECT_EQ(gate_.Held(1), 0u);
  EXPECT_EQ(gate_.Held(3), 0u);
}

TEST_F(AnswerGateTest, GoneConnectionGetsNothingButItsSubmitsAreStillRefused) {
  gate_.Lines(1, 1) += "x\n";
  gate_.Accepted(1, 1, SubmitAck{3, 30, false, ""}, 10);
  gone_.insert(1);
  gate_.Drop(1);
  EXPECT_EQ(gate_.Held(1), 10u);  // its submit's task is still held
  Refuse();
  EXPECT_EQ(sent_.count(1), 0u);
  ASSERT_EQ(forgotten_.size(), 1u);
  EXPECT_EQ(forgotten_[0].id, 30u);
  EXPECT_EQ(gate_.Held(1), 0u);
}

TEST_F(AnswerGateTest, GoneConnectionsSubmitsAreSettledWhenDurable) {
  gate_.Accepted(1, 1, SubmitAck{3, 30, false, ""}, 10);
  gone_.insert(1);
  gate_.Drop(1);
  gate_.Durable(1);
  EXPECT_EQ(gate_.Held(1), 0u);
  Refuse();  // later failures do not touch it
  EXPECT_TRUE(forgotten_.empty());
  EXPECT_EQ(sent_.count(1), 0u);
}

TEST_F(AnswerGateTest, ManyRunsReleaseInStepsWithoutLosingBytes) {
  std::string expected;
  for (uint64_t take = 1; take <= 50; ++take) {
    for (int i = 0; i < 3; ++i) {
      // Long enough that what has gone out is cut off the front on the way.
      const std::string line =
          std::to_string(take) + "." + std::to_string(i) + std::string(100, 'x') + "\n";
      gate_.Lines(1, take) += line;
      expected += line;
    }
  }
  for (uint64_t durable = 0; durable <= 50; durable += 7) {
    gate_.Durable(durable);
    EXPECT_EQ(sent_[1], expected.substr(0, sent_[1].size()));
  }
  EXPECT_GT(gate_.Held(1), 0u);
  gate_.Durable(50);
  EXPECT_EQ(sent_[1], expected);
  EXPECT_EQ(gate_.Held(1), 0u);
}

}  // namespace
}  // namespace pincer
