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
  for (int i = 0; i < 4; ++i)
    v |= static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  return v;
}

Status Errno(int error, const std::string& what, const std::string& path) {
  return Status("store_unavailable", "cannot " + what + " " + path + ": " + std::strerror(error));
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
  if (fd < 0) return Errno(errno, "open", path);
  // Read in one go into a buffer of the file's size: growing a string 64
  // KiB at a time copied a 16 MiB segment twice over.
  std::vector<char> local;
  std::vector<char>& buf = buffer ? *buffer : local;
  struct stat st {};
  std::size_t size = 0;
  ssize_t n = ::fstat(fd, &st);
  if (n == 0) {
    if (buf.size() < static_cast<std::size_t>(st.st_size))
      buf.resize(static_cast<std::size_t>(st.st_size));
    while (size < buf.size() && (n = ::read(fd, buf.data() + size, buf.size() - size)) > 0) {
      size += static_cast<std::size_t>(n);
    }
  }
  const int read_errno = errno;
  ::close(fd);
  if (n < 0) {
    return Errno(read_errno, "read", path);
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

SegmentWriter::SegmentWriter(std::string dir, uint64_t next_number, std::size_t segment_bytes,
                             FileSystem& files)
    : dir_(std::move(dir)),
      next_number_(next_number),
      segment_bytes_(segment_bytes),
      files_(files) {}

SegmentWriter::~SegmentWriter() = default;

Status SegmentWriter::Close() {
  if (!file_) return Status::Ok();
  // A zero length after the last record: what follows may be records of
  // the file's former life.
  const char zero[kHeader] = {};
  if (offset_ + kHeader <= size_) {
    if (const int e = file_->WriteAt(offset_, std::string_view(zero, kHeader))) {
      return Errno(e, "write", SegmentPath(dir_, number_));
    }
  }
  if (const int e = file_->SyncData()) return Errno(e, "sync", SegmentPath(dir_, number_));
  file_.reset();
  return Status::Ok();
}

Status SegmentWriter::Start(std::size_t min_bytes) {
  if (Status st = Close(); !st.ok()) return st;
  const std::size_t size = std::max(segment_bytes_, min_bytes);
  const std::string path = SegmentPath(dir_, next_number_);
  const bool recycled = files_.Rename(SparePath(dir_), path) == 0;
  std::unique_ptr<WritableFile> file;
  if (const int e = files_.Open(path, /*truncate=*/!recycled, file)) {
    return Errno(e, "create", path);
  }
  // A recycled file is used as far as it is long (its blocks are written);
  // the rest, or all of a new file, is allocated.
  uint64_t have = 0;
  int e = recycled ? file->Size(have) : 0;
  if (e == 0 && have < size) e = file->Allocate(size);
  if (e == 0) e = file->Sync();
  if (e != 0) {
    file.reset();
    files_.Remove(path);
    return Errno(e, "allocate", path);
  }
  if (const int d = files_.SyncDir(dir_)) {
    file.reset();
    files_.Remove(path);
    return Errno(d, "sync", dir_);
  }
  file_ = std::move(file);
  number_ = next_number_++;
  size_ = std::max<std::size_t>(size, static_cast<std::size_t>(have));
  offset_ = 0;
  last_ = 0;
  last_synced_ = true;
  replace_last_ = false;
  return Status::Ok();
}

Status SegmentWriter::Append(std::string_view payload) {
  const std::size_t need = kHeader + payload.size();
  if (replace_last_) offset_ = last_;  // its sync failed: this record replaces it
  // A segment keeps room for a zero length after its last record.
  if (!file_ || offset_ + need + kHeader > size_) {
    if (Status st = Start(need + kHeader); !st.ok()) return st;
  }
  frame_.resize(kHeader);
  PutU32(frame_.data(), static_cast<uint32_t>(payload.size()));
  PutU32(frame_.data() + 4, Checksum(number_, payload));
  frame_.append(payload);
  if (const int e = file_->WriteAt(offset_, frame_)) {
    return Errno(e, "write", SegmentPath(dir_, number_));
  }
  last_ = offset_;
  last_synced_ = false;
  replace_last_ = false;
  offset_ += frame_.size();
  return Status::Ok();
}

Status SegmentWriter::Sync() {
  if (!file_) return Status::Ok();
  if (const int e = file_->SyncData()) return Errno(e, "sync", SegmentPath(dir_, number_));
  last_synced_ = true;
  return Status::Ok();
}

void SegmentWriter::DropLast() {
  if (file_ && !last_synced_) replace_last_ = true;
}

}  // namespace pincer
