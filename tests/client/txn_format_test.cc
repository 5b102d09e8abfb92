// Unit tests of tkv's etcdctl txn text format parser.
#include "txn_format.h"

#include <gtest/gtest.h>

#include <sstream>

namespace totemkv::tkv {
namespace {

TEST(TxnFormat, ParseCompare_AllTargetsAndOperators) {
  auto c = ParseCompare("value(\"k\") = \"a b\"");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->target(), etcdserverpb::Compare::VALUE);
  EXPECT_EQ(c->result(), etcdserverpb::Compare::EQUAL);
  EXPECT_EQ(c->value(), "a b");
  c = ParseCompare("mod(\"k\") > \"3\"");
  EXPECT_EQ(c->mod_revision(), 3);
  EXPECT_EQ(c->result(), etcdserverpb::Compare::GREATER);
  EXPECT_EQ(ParseCompare("ver(\"k\") != 0")->result(), etcdserverpb::Compare::NOT_EQUAL);
  EXPECT_EQ(ParseCompare("c(\"k\") < \"9\"")->create_revision(), 9);
  EXPECT_EQ(ParseCompare("lease(\"k\") = \"5\"")->target(), etcdserverpb::Compare::LEASE);
  EXPECT_FALSE(ParseCompare("value(k) = \"x\"").ok());
  EXPECT_FALSE(ParseCompare("mod(\"k\") ~ \"1\"").ok());
  EXPECT_FALSE(ParseCompare("mod(\"k\") = \"abc\"").ok());
}

TEST(TxnFormat, ParseRequestOp_PutGetDel) {
  auto op = ParseRequestOp("put k \"hello world\" --lease=1f");
  ASSERT_TRUE(op.ok()) << op.status().ToString();
  EXPECT_EQ(op->request_put().value(), "hello world");
  EXPECT_EQ(op->request_put().lease(), 0x1f);
  op = ParseRequestOp("get p --prefix --limit=2");
  EXPECT_EQ(op->request_range().range_end(), "q");
  EXPECT_EQ(op->request_range().limit(), 2);
  op = ParseRequestOp("del a c");
  EXPECT_EQ(op->request_delete_range().range_end(), "c");
  EXPECT_FALSE(ParseRequestOp("put k").ok());
  EXPECT_FALSE(ParseRequestOp("frob k").ok());
  EXPECT_FALSE(ParseRequestOp("get k --bogus").ok());
  EXPECT_FALSE(ParseRequestOp("put k \"unterminated").ok());
}

TEST(TxnFormat, ParseTxn_ThreeSectionsAndPrompts) {
  std::istringstream in("value(\"k\") = \"v\"\n\nput k v2\n\nget k\ndel k\n");
  std::ostringstream prompts;
  auto t = ParseTxn(in, &prompts);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->compare_size(), 1);
  EXPECT_EQ(t->success_size(), 1);
  EXPECT_EQ(t->failure_size(), 2);
  EXPECT_NE(prompts.str().find("compares:"), std::string::npos);
  std::istringstream empty("");
  EXPECT_TRUE(ParseTxn(empty, nullptr).ok());
}

}  // namespace
}  // namespace totemkv::tkv
