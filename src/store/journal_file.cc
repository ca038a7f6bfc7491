#include "store/journal_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace pincer {
namespace {

constexpr std::size_t kHeader = 8;

// A multiply-xorshift hash over 8-byte words, 32 bits of it: enough to
// tell a record cut short or half-written by a crash from a whole one, at
// several bytes per cycle (records are tens of kilobytes under load).
uint32_t Checksum(uint64_t segment, std::string_view data) {
  constexpr uint64_t kMul = 0x9e3779b97f4a7c15ull;
  uint64_t h = (data.size() ^ (segment << 32) ^ segment) * kMul;
  std::size_t i = 0;
  for (; i + 8 <= data.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, data.data() + i, 8);
    h = (h ^ w) * kMul;
    h ^= h >> 32;
  }
  uint64_t tail = 0;
  std::memcpy(&tail, data.data() + i, data.size() - i);
  h = (h ^ tail) * kMul;
  h ^= h >> 29;
  return static_cast<uint32_t>(h ^ (h >> 32));
}

void PutU32(char* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

uint32_t GetU32(const char* in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  return v;
}

Status Errno(const std::string& what, const std::string& path) {
  return Status("store_unavailable", "cannot " + what + " " + path + ": " + std::strerror(errno));
}

Status SyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("open", dir);
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Errno("sync", dir);
  return Status::Ok();
}

}  // namespace

std::string SegmentPath(const std::string& dir, uint64_t number) {
  char name[40];
  std::snprintf(name, sizeof(name), "/journal-%06llu.log", static_cast<unsigned long long>(number));
  return dir + name;
}

std::string SparePath(const std::string& dir) { return dir + "/journal-spare.log"; }

std::vector<uint64_t> ListSegments(const std::string& dir) {
  std::vector<uint64_t> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (const dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    constexpr std::string_view kPrefix = "journal-", kSuffix = ".log";
    if (name.size() <= kPrefix.size() + kSuffix.size() || !name.starts_with(kPrefix) ||
        !name.ends_with(kSuffix)) {
      continue;
    }
    name = name.substr(kPrefix.size(), name.size() - kPrefix.size() - kSuffix.size());
    uint64_t n = 0;
    auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), n);
    if (ec == std::errc() && end == name.data() + name.size() && n > 0) out.push_back(n);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

Status ReadSegment(const std::string& dir, uint64_t number,
                   const std::function<void(std::string_view)>& visit, SegmentEnd& end,
                   std::vector<char>* buffer) {
  const std::string path = SegmentPath(dir, number);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("open", path);
  // Read in one go into a buffer of the file's size: growing a string 64
  // KiB at a time copied a 16 MiB segment twice over.
  std::vector<char> local;
  std::vector<char>& buf = buffer ? *buffer : local;
  struct stat st {};
  std::size_t size = 0;
  ssize_t n = ::fstat(fd, &st);
  if (n == 0) {
    if (buf.size() < static_cast<std::size_t>(st.st_size)) buf.resize(static_cast<std::size_t>(st.st_size));
    while (size < buf.size() && (n = ::read(fd, buf.data() + size, buf.size() - size)) > 0) {
      size += static_cast<std::size_t>(n);
    }
  }
  const int read_errno = errno;
  ::close(fd);
  if (n < 0) {
    errno = read_errno;
    return Errno("read", path);
  }
  const std::string_view data(buf.data(), size);
  end = SegmentEnd::kClean;
  std::string_view in = data;
  while (in.size() >= kHeader) {
    const uint32_t len = GetU32(in.data());
    if (len == 0) return Status::Ok();
    if (len > in.size() - kHeader ||
        GetU32(in.data() + 4) != Checksum(number, in.substr(kHeader, len))) {
      end = SegmentEnd::kTorn;
      return Status::Ok();
    }
    visit(in.substr(kHeader, len));
    in.remove_prefix(kHeader + len);
  }
  if (!in.empty() && in.find_first_not_of('\0') != std::string_view::npos) end = SegmentEnd::kTorn;
  return Status::Ok();
}

SegmentWriter::SegmentWriter(std::string dir, uint64_t next_number, std::size_t segment_bytes)
    : dir_(std::move(dir)), next_number_(next_number), segment_bytes_(segment_bytes) {}

SegmentWriter::~SegmentWriter() {
  if (fd_ >= 0) ::close(fd_);
}

Status SegmentWriter::Close() {
  if (fd_ < 0) return Status::Ok();
  // A zero length after the last record: what follows may be records of
  // the file's former life.
  const char zero[kHeader] = {};
  if (offset_ + kHeader <= size_ &&
      ::pwrite(fd_, zero, kHeader, static_cast<off_t>(offset_)) != static_cast<ssize_t>(kHeader)) {
    return Errno("write", SegmentPath(dir_, number_));
  }
  if (::fdatasync(fd_) != 0) return Errno("sync", SegmentPath(dir_, number_));
  ::close(fd_);
  fd_ = -1;
  return Status::Ok();
}

Status SegmentWriter::Start(std::size_t min_bytes) {
  if (Status st = Close(); !st.ok()) return st;
  const std::size_t size = std::max(segment_bytes_, min_bytes);
  const std::string path = SegmentPath(dir_, next_number_);
  const bool recycled = ::rename(SparePath(dir_).c_str(), path.c_str()) == 0;
  const int fd = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC | (recycled ? 0 : O_TRUNC), 0644);
  if (fd < 0) return Errno("create", path);
  // A recycled file is used as far as it is long (its blocks are written);
  // the rest, or all of a new file, is allocated.
  off_t have = recycled ? ::lseek(fd, 0, SEEK_END) : 0;
  int rc = 0;
  if (have < static_cast<off_t>(size)) rc = ::posix_fallocate(fd, 0, static_cast<off_t>(size));
  if (rc != 0 || ::fsync(fd) != 0) {
    if (rc != 0) errno = rc;
    Status st = Errno("allocate", path);
    ::close(fd);
    ::unlink(path.c_str());
    return st;
  }
  if (Status st = SyncDir(dir_); !st.ok()) {
    ::close(fd);
    ::unlink(path.c_str());
    return st;
  }
  fd_ = fd;
  number_ = next_number_++;
  size_ = std::max<std::size_t>(size, static_cast<std::size_t>(have));
  offset_ = 0;
  return Status::Ok();
}

Status SegmentWriter::Append(std::string_view payload) {
  const std::size_t need = kHeader + payload.size();
  // A segment keeps room for a zero length after its last record.
  if (fd_ < 0 || offset_ + need + kHeader > size_) {
    if (Status st = Start(need + kHeader); !st.ok()) return st;
  }
  frame_.resize(kHeader);
  PutU32(frame_.data(), static_cast<uint32_t>(payload.size()));
  PutU32(frame_.data() + 4, Checksum(number_, payload));
  frame_.append(payload);
  std::size_t done = 0;
  while (done < frame_.size()) {
    const ssize_t n = ::pwrite(fd_, frame_.data() + done, frame_.size() - done,
                               static_cast<off_t>(offset_ + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("write", SegmentPath(dir_, number_));
    }
    done += static_cast<std::size_t>(n);
  }
  offset_ += frame_.size();
  return Status::Ok();
}

Status SegmentWriter::Sync() {
  if (fd_ >= 0 && ::fdatasync(fd_) != 0) return Errno("sync", SegmentPath(dir_, number_));
  return Status::Ok();
}

}  // namespace pincer
