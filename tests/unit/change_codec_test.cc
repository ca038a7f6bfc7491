// change_codec: the binary form of store changes (the journal's records,
// the ended-task archive's records).
#include "store/change_codec.h"

#include <gtest/gtest.h>

#include <string>

namespace pincer {
namespace {

TaskRecord Full() {
  TaskRecord r;
  r.id = 300;  // a two-byte varint
  r.skills = {"code", "review"};
  r.payload = R"({"diff":"x"})";
  r.priority = -7;
  r.timeout_ms = 60'000;
  r.max_attempts = 5;
  r.session = "s-1";
  r.key = "k-1";
  r.state = TaskState::kTimedOut;
  r.attempts = 2;
  r.worker = "w9";
  r.output = "";
  r.error = "attempt 2 timed out";
  r.errors = {{1, "w8", "lost"}, {2, "w9", "attempt 2 timed out"}};
  r.created_ms = 1'764'000'000'000;
  r.started_ms = 1'764'000'000'500;
  r.ended_ms = 1'764'000'060'500;
  return r;
}

TEST(ChangeCodecTest, AnInsertReadsBackWhole) {
  const TaskRecord r = Full();
  std::string bytes;
  EncodeChange(bytes, ChangeOp::kInsert, r);
  std::string_view in(bytes);
  ChangeOp op;
  TaskRecord back;
  ASSERT_TRUE(DecodeChange(in, op, back));
  EXPECT_TRUE(in.empty());
  EXPECT_EQ(op, ChangeOp::kInsert);
  EXPECT_EQ(back.id, 300u);
  EXPECT_EQ(back.skills, r.skills);
  EXPECT_EQ(back.payload, r.payload);
  EXPECT_EQ(back.priority, -7);
  EXPECT_EQ(back.timeout_ms, 60'000);
  EXPECT_EQ(back.max_attempts, 5);
  EXPECT_EQ(back.session, "s-1");
  EXPECT_EQ(back.key, "k-1");
  EXPECT_EQ(back.state, TaskState::kTimedOut);
  EXPECT_EQ(back.attempts, 2);
  EXPECT_EQ(back.worker, "w9");
  EXPECT_EQ(back.error, r.error);
  ASSERT_EQ(back.errors.size(), 2u);
  EXPECT_EQ(back.errors[1].worker, "w9");
  EXPECT_EQ(back.created_ms, r.created_ms);
  EXPECT_EQ(back.started_ms, r.started_ms);
  EXPECT_EQ(back.ended_ms, r.ended_ms);
}

TEST(ChangeCodecTest, AnEndedRecordReadsBackWholeOrJustItsOutcome) {
  std::string bytes;
  EncodeEnded(bytes, Full());
  const std::size_t first = bytes.size();
  TaskRecord later = Full();
  later.id = 301;
  later.state = TaskState::kSucceeded;
  later.output = R"({"ok":1})";
  later.errors.clear();
  EncodeEnded(bytes, later);

  std::string_view in(bytes);
  TaskRecord whole;
  ASSERT_TRUE(DecodeEnded(in, whole));
  EXPECT_EQ(in.size(), bytes.size() - first);
  EXPECT_EQ(whole.id, 300u);
  EXPECT_EQ(whole.skills, Full().skills);
  EXPECT_EQ(whole.payload, Full().payload);
  EXPECT_EQ(whole.key, Full().key);
  EXPECT_EQ(whole.created_ms, Full().created_ms);
  EXPECT_EQ(whole.state, TaskState::kTimedOut);
  EXPECT_EQ(whole.errors.size(), 2u);
  EXPECT_EQ(whole.ended_ms, Full().ended_ms);

  Outcome o;
  std::vector<AttemptError> errors;
  ASSERT_TRUE(DecodeEndedOutcome(std::string_view(bytes).substr(0, first), o, errors));
  EXPECT_EQ(o.id, 300u);
  EXPECT_EQ(o.state, TaskState::kTimedOut);
  EXPECT_EQ(o.attempts, Full().attempts);
  EXPECT_EQ(o.worker, Full().worker);
  EXPECT_EQ(o.output, Full().output);
  EXPECT_EQ(o.error, Full().error);
  ASSERT_EQ(o.errors.size(), 2u);
  EXPECT_EQ(o.errors[1].worker, Full().errors[1].worker);
  EXPECT_EQ(o.errors[1].error, Full().errors[1].error);

  ASSERT_TRUE(DecodeEndedOutcome(in, o, errors));
  EXPECT_EQ(o.id, 301u);
  EXPECT_EQ(o.state, TaskState::kSucceeded);
  EXPECT_EQ(o.output, R"({"ok":1})");
  EXPECT_TRUE(o.errors.empty());
}

TEST(ChangeCodecTest, SkipChangeStepsOverEachChangeByOpAndId) {
  std::string bytes;
  EncodeChange(bytes, ChangeOp::kInsert, Full());
  EncodeChange(bytes, ChangeOp::kUpdate, Full());
  EncodeErase(bytes, 7);
  std::string_view in(bytes);
  ChangeOp op;
  TaskId id;
  ASSERT_TRUE(SkipChange(in, op, id));
  EXPECT_EQ(op, ChangeOp::kInsert);
  EXPECT_EQ(id, 300u);
  ASSERT_TRUE(SkipChange(in, op, id));
  EXPECT_EQ(op, ChangeOp::kUpdate);
  ASSERT_TRUE(SkipChange(in, op, id));
  EXPECT_EQ(op, ChangeOp::kErase);
  EXPECT_EQ(id, 7u);
  EXPECT_TRUE(in.empty());
}

TEST(ChangeCodecTest, TruncatedOrUnknownChangesAreRefusedByEveryReader) {
  std::string bytes;
  EncodeChange(bytes, ChangeOp::kInsert, Full());
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
    const std::string part = bytes.substr(0, cut);
    ChangeOp op;
    TaskRecord r;
    TaskId id;
    std::string_view a(part), c(part);
    EXPECT_FALSE(DecodeChange(a, op, r)) << "cut at " << cut;
    EXPECT_FALSE(SkipChange(c, op, id)) << "cut at " << cut;
  }
  std::string ended;
  EncodeEnded(ended, Full());
  const std::size_t outcome_bytes =
      2 + 1 + 1 + 3 + 1 + 1 + Full().error.size();  // to the error's end
  for (std::size_t cut = 0; cut < ended.size(); ++cut) {
    std::string_view part = std::string_view(ended).substr(0, cut);
    TaskRecord r;
    EXPECT_FALSE(DecodeEnded(part, r)) << "cut at " << cut;
    Outcome o;
    std::vector<AttemptError> errors;
    if (cut < outcome_bytes) {
      EXPECT_FALSE(DecodeEndedOutcome(part, o, errors)) << "cut at " << cut;
    }
  }
  std::string unknown = bytes;
  unknown[0] = 9;  // no such op
  std::string_view in(unknown);
  ChangeOp op;
  TaskRecord r;
  EXPECT_FALSE(DecodeChange(in, op, r));
}

// Format 1 (before usage and per-task backoff): what older journals hold.
// A record with neither is still written in it, byte for byte.
TEST(ChangeCodecTest, FormatOneRecordsReadAndAreStillWritten) {
  const std::string v1(
      "\x01\x01"                           // kInsert, id 1
      "\x00\x00\x00\x00\x06\x00\x00\x00"   // submitted: max_attempts 3
      "\x00\x00\x00\x00\x00\x00\x00\x00",  // mutable
      18);
  std::string_view in(v1);
  ChangeOp op;
  TaskRecord r;
  r.usage.input = 99;  // reset by the decode
  ASSERT_TRUE(DecodeChange(in, op, r));
  EXPECT_TRUE(in.empty());
  EXPECT_EQ(op, ChangeOp::kInsert);
  EXPECT_EQ(r.max_attempts, 3);
  EXPECT_TRUE(r.usage.empty());
  EXPECT_FALSE(r.has_backoff);

  TaskRecord fresh;
  fresh.id = 1;
  std::string bytes;
  EncodeChange(bytes, ChangeOp::kInsert, fresh);
  EXPECT_EQ(bytes, v1);
}

TEST(ChangeCodecTest, UsageAndBackoffReadBackFromEveryForm) {
  TaskRecord r = Full();
  r.has_backoff = true;
  r.backoff = {3'600'000, 7'200'000, 0.25};
  r.usage = {120, 40, 160, 0.0042, "gpt-x"};
  r.parent = 200;

  std::string bytes;
  EncodeChange(bytes, ChangeOp::kInsert, r);
  EncodeChange(bytes, ChangeOp::kUpdate, r);
  EncodeErase(bytes, 5);
  std::string_view in(bytes);
  ChangeOp op;
  TaskRecord back;
  ASSERT_TRUE(DecodeChange(in, op, back));
  EXPECT_EQ(op, ChangeOp::kInsert);
  EXPECT_TRUE(back.has_backoff);
  EXPECT_EQ(back.backoff, r.backoff);
  EXPECT_EQ(back.usage, r.usage);
  EXPECT_EQ(back.parent, r.parent);
  EXPECT_EQ(back.ended_ms, r.ended_ms);
  TaskRecord update;
  ASSERT_TRUE(DecodeChange(in, op, update));
  EXPECT_EQ(op, ChangeOp::kUpdate);
  EXPECT_EQ(update.usage, r.usage);
  EXPECT_FALSE(update.has_backoff) << "an update does not carry submitted fields";
  ASSERT_TRUE(DecodeChange(in, op, update));
  EXPECT_EQ(op, ChangeOp::kErase);
  EXPECT_TRUE(in.empty());

  // SkipChange steps over the extensions.
  in = bytes;
  TaskId id;
  ASSERT_TRUE(SkipChange(in, op, id));
  ASSERT_TRUE(SkipChange(in, op, id));
  EXPECT_EQ(op, ChangeOp::kUpdate);
  ASSERT_TRUE(SkipChange(in, op, id));
  EXPECT_EQ(id, 5u);
  EXPECT_TRUE(in.empty());

  std::string ended;
  EncodeEnded(ended, r);
  std::string_view e(ended);
  TaskRecord from_archive;
  ASSERT_TRUE(DecodeEnded(e, from_archive));
  EXPECT_TRUE(e.empty());
  EXPECT_EQ(from_archive.usage, r.usage);
  EXPECT_EQ(from_archive.backoff, r.backoff);
  EXPECT_EQ(from_archive.parent, r.parent);

  // Cut anywhere, an extended change is refused, never half read.
  std::string one;
  EncodeChange(one, ChangeOp::kInsert, r);
  for (std::size_t cut = 0; cut < one.size(); ++cut) {
    std::string_view a(one.data(), cut), c(one.data(), cut);
    TaskRecord t;
    EXPECT_FALSE(DecodeChange(a, op, t)) << "cut at " << cut;
    EXPECT_FALSE(SkipChange(c, op, id)) << "cut at " << cut;
  }
  // An erase never has an extension; unknown extension flags are refused.
  std::string erase_ext("\x83\x05", 2);
  std::string_view x(erase_ext);
  EXPECT_FALSE(DecodeChange(x, op, back));
  std::string plain;
  TaskRecord small;
  small.id = 1;
  small.usage.input = 1;
  EncodeChange(plain, ChangeOp::kUpdate, small);
  plain[plain.size() - 1 - 3 * 1 - 8 - 1] = 0x7f;  // the flags varint
  std::string_view y(plain);
  EXPECT_FALSE(DecodeChange(y, op, back));
}

}  // namespace
}  // namespace pincer
