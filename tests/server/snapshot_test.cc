// Backup and restore end to end, with real processes: keys written to a
// 3-node totemkvd cluster are saved with `etcdctl snapshot save` (Debian's
// etcdctl 3.4, which checks the stream's trailing SHA-256 shape) and with
// `tkv snapshot save`; new clusters restored from those files
// (`totemkvd --restore-snapshot`), one restored member plus two empty ones
// and all three restored, serve every key with its original revisions and
// accept new writes. Damaged files are refused with a precise message, exit
// code 1, and nothing left in the data dir.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "cluster_harness.h"

namespace totemkv::testing {
namespace {

using KeyMap = std::map<std::string, std::pair<std::string, int64_t>>;

constexpr const char* kTkvBin = TKV_BIN;

// Runs `argv` to completion; {exit code, combined output}.
std::pair<int, std::string> Run(const std::string& dir, const std::vector<std::string>& argv) {
  static int counter = 0;
  const std::string log = dir + "/run" + std::to_string(counter++) + ".out";
  Child child(argv, log);
  const std::optional<int> rc = child.Wait(seconds(60));
  return {rc.value_or(-1), ReadFile(log)};
}

std::pair<int, std::string> Restore(const std::string& dir, const std::string& file,
                                    const std::string& data_dir) {
  return Run(dir, {kServerBin, "--restore-snapshot", file, "--data-dir", data_dir});
}

std::pair<int, std::string> TkvSave(const Cluster& c, size_t node, const std::string& file) {
  return Run(c.dir(), {kTkvBin, "--endpoints=" + c.Endpoint(node), "snapshot", "save", file});
}

// Writes puts, overwrites and deletes under "k/"; returns what must be read
// back afterwards (key -> value, mod revision).
KeyMap WriteKeys(Cluster& c) {
  auto kv = c.Kv(0);
  etcdserverpb::PutResponse put;
  // 40 x 60 KB: the image spans several export chunks and stream pieces.
  for (int i = 0; i < 40; ++i) {
    const std::string value =
        "v" + std::to_string(i) + std::string(60000, static_cast<char>('a' + i % 26));
    EXPECT_TRUE(Put(*kv, "k/" + std::to_string(i), value, &put).ok());
  }
  for (int i = 0; i < 10; ++i) {
    EXPECT_TRUE(Put(*kv, "k/" + std::to_string(i), "w" + std::to_string(i), &put).ok());
  }
  const auto [rc, out] = Etcdctl(c, c.Endpoint(1), "del --prefix k/3");
  EXPECT_EQ(rc, 0) << out;
  KeyMap keys;
  EXPECT_TRUE(RangePrefix(*kv, "k/", false, &keys).ok());
  EXPECT_EQ(keys.size(), 40u - 11u);  // k/3 and k/30..k/39 deleted
  return keys;
}

// Every node of `c` serves exactly `want` (serializable, i.e. its own
// state), then a linearizable write goes through at a later revision.
void ExpectServes(Cluster& c, const KeyMap& want, int64_t revision) {
  for (size_t i = 0; i < 3; ++i) {
    auto kv = c.Kv(i);
    KeyMap got;
    EXPECT_TRUE(WaitFor([&] { return RangePrefix(*kv, "k/", true, &got).ok() && got == want; },
                        seconds(20)))
        << "node " << i + 1 << " has " << got.size() << " keys";
  }
  auto kv = c.Kv(2);
  etcdserverpb::PutResponse put;
  ASSERT_TRUE(Put(*kv, "after", "restore", &put).ok());
  EXPECT_GT(put.header().revision(), revision);
}

TEST(SnapshotTest, SaveWithEtcdctlAndTkv_RestoreOneOrAll_EveryKeyWithItsRevision) {
  Cluster a(3);
  ASSERT_TRUE(a.Init());
  for (size_t i = 0; i < 3; ++i) a.Start(i);
  ASSERT_TRUE(a.WaitForRing("1,2,3", seconds(30))) << a.Logs();
  const KeyMap keys = WriteKeys(a);
  int64_t revision = 0;
  {
    auto kv = a.Kv(0);
    KeyMap unused;
    ASSERT_TRUE(RangePrefix(*kv, "k/", false, &unused, &revision).ok());
  }

  const std::string etcdctl_file = a.dir() + "/etcdctl.snap";
  const std::string tkv_file = a.dir() + "/tkv.snap";
  const auto [erc, eout] = Etcdctl(a, a.Endpoint(1), "snapshot save " + etcdctl_file);
  ASSERT_EQ(erc, 0) << eout;
  EXPECT_NE(eout.find("Snapshot saved at"), std::string::npos) << eout;
  const auto [trc, tout] = TkvSave(a, 2, tkv_file);
  ASSERT_EQ(trc, 0) << tout;
  EXPECT_NE(tout.find("Snapshot saved at " + tkv_file), std::string::npos) << tout;
  EXPECT_FALSE(std::filesystem::exists(tkv_file + ".part"));

  // One restored member, two empty: the restored one is the donor.
  {
    Cluster b(3);
    ASSERT_TRUE(b.Init());
    const auto [rc, out] = Restore(b.dir(), etcdctl_file, b.dir() + "/n1");
    ASSERT_EQ(rc, 0) << out;
    EXPECT_NE(out.find("revision " + std::to_string(revision)), std::string::npos) << out;
    EXPECT_EQ(out.find(" 1 chunks"), std::string::npos) << out;
    for (size_t i = 0; i < 3; ++i) b.Start(i);
    ASSERT_TRUE(b.WaitForRing("1,2,3", seconds(30))) << b.Logs();
    ExpectServes(b, keys, revision);
    if (HasFailure()) std::fprintf(stderr, "%s\n", b.Logs().c_str());
  }
  // Every member restored from the same file.
  {
    Cluster c(3);
    ASSERT_TRUE(c.Init());
    for (size_t i = 0; i < 3; ++i) {
      const auto [rc, out] = Restore(c.dir(), tkv_file, c.dir() + "/n" + std::to_string(i + 1));
      ASSERT_EQ(rc, 0) << out;
    }
    for (size_t i = 0; i < 3; ++i) c.Start(i);
    ASSERT_TRUE(c.WaitForRing("1,2,3", seconds(30))) << c.Logs();
    ExpectServes(c, keys, revision);
    if (HasFailure()) std::fprintf(stderr, "%s\n", c.Logs().c_str());
  }
}

TEST(SnapshotTest, DamagedFiles_RefusedWithReason_NothingRestored) {
  Cluster a(1);
  ASSERT_TRUE(a.Init());
  a.Start(0);
  ASSERT_TRUE(a.WaitForRing("1", seconds(30))) << a.Logs();
  auto kv = a.Kv(0);
  etcdserverpb::PutResponse put;
  ASSERT_TRUE(Put(*kv, "k", std::string(3000, 'x'), &put).ok());
  const std::string good = a.dir() + "/good.snap";
  const auto [src, sout] = TkvSave(a, 0, good);
  ASSERT_EQ(src, 0) << sout;
  const std::string bytes = ReadFile(good);
  ASSERT_GT(bytes.size(), 1024u);

  const auto write = [&](const std::string& name, const std::string& content) {
    const std::string path = a.dir() + "/" + name;
    std::ofstream(path, std::ios::binary) << content;
    return path;
  };
  struct Case {
    std::string file;
    std::string reason;
  };
  std::string flipped = bytes;
  flipped[bytes.size() / 2] = static_cast<char>(flipped[bytes.size() / 2] ^ 0x40);
  const std::vector<Case> cases = {
      {write("truncated.snap", bytes.substr(0, bytes.size() - 100)), "truncated"},
      {write("short.snap", bytes.substr(0, 20)), "truncated"},
      {write("flipped.snap", flipped), "checksum mismatch"},
      {write("other.snap", std::string(1056, 'z')), "not a totemkv snapshot"},
      {a.dir() + "/missing.snap", "No such file"},
  };
  for (const Case& c : cases) {
    const std::string data_dir =
        a.dir() + "/restore-" + std::filesystem::path(c.file).stem().string();
    const auto [rc, out] = Restore(a.dir(), c.file, data_dir);
    EXPECT_EQ(rc, 1) << c.file << ": " << out;
    EXPECT_NE(out.find(c.reason), std::string::npos) << c.file << ": " << out;
    EXPECT_FALSE(std::filesystem::exists(data_dir + "/db")) << c.file;
    EXPECT_FALSE(std::filesystem::exists(data_dir + "/db.restoring")) << c.file;
  }
  // A good file into a data dir that already holds a store.
  const std::string used = a.dir() + "/used";
  ASSERT_EQ(Restore(a.dir(), good, used).first, 0);
  const auto [rc, out] = Restore(a.dir(), good, used);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("already exists"), std::string::npos) << out;
}

}  // namespace
}  // namespace totemkv::testing
