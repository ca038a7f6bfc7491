#include "support/faulty_file_system.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

namespace pincer::test {

class FaultyFileSystem::File final : public WritableFile {
 public:
  File(FaultyFileSystem& fs, std::string path, std::unique_ptr<WritableFile> real)
      : fs_(fs), path_(std::move(path)), real_(std::move(real)) {}

  int Size(uint64_t& size) override { return real_->Size(size); }

  int Allocate(uint64_t size) override {
    if (const int e = fs_.Check(Op::kAllocate)) return e;
    return real_->Allocate(size);
  }

  int WriteAt(uint64_t offset, std::string_view data) override {
    const int e = fs_.Check(Op::kWrite);
    if (e != 0) data = data.substr(0, std::min(data.size(), fs_.faults_[Op::kWrite].partial));
    fs_.Remember(path_, offset, data.size());
    if (const int w = real_->WriteAt(offset, data)) return w;
    return e;
  }

  int SyncData() override { return Synced(real_->SyncData()); }
  int Sync() override { return Synced(real_->Sync()); }

 private:
  int Synced(int e) {
    if (e == 0 && (e = fs_.Check(Op::kSync)) != 0) {
      fs_.UndoWrites(path_);  // the pages that failed to write back are gone
    }
    if (e == 0) fs_.unsynced_.erase(path_);
    return e;
  }

  FaultyFileSystem& fs_;
  const std::string path_;
  std::unique_ptr<WritableFile> real_;
};

void FaultyFileSystem::Fail(Op op, int error, std::size_t partial) {
  Fault& f = faults_[op];
  f.error = error;
  f.partial = partial;
}

void FaultyFileSystem::Heal() {
  for (auto& [op, f] : faults_) f.error = 0;
}

int FaultyFileSystem::failed(Op op) const {
  auto it = faults_.find(op);
  return it == faults_.end() ? 0 : it->second.failed;
}

int FaultyFileSystem::Check(Op op) {
  Fault& f = faults_[op];
  if (f.error != 0) ++f.failed;
  return f.error;
}

void FaultyFileSystem::Remember(const std::string& path, uint64_t offset, std::size_t bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  struct stat st {};
  ::fstat(fd, &st);
  Undo undo{offset, std::string(bytes, '\0'), static_cast<uint64_t>(st.st_size)};
  const ssize_t n = ::pread(fd, undo.old.data(), bytes, static_cast<off_t>(offset));
  undo.old.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  ::close(fd);
  unsynced_[path].push_back(std::move(undo));
}

void FaultyFileSystem::UndoWrites(const std::string& path) {
  auto it = unsynced_.find(path);
  if (it == unsynced_.end()) return;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    for (auto u = it->second.rbegin(); u != it->second.rend(); ++u) {
      if (::pwrite(fd, u->old.data(), u->old.size(), static_cast<off_t>(u->offset)) < 0) break;
      if (::ftruncate(fd, static_cast<off_t>(u->size)) != 0) break;
    }
    ::close(fd);
  }
  unsynced_.erase(it);
}

void FaultyFileSystem::DropUnsynced() {
  while (!unsynced_.empty()) {
    const std::string path = unsynced_.begin()->first;
    UndoWrites(path);
  }
}

int FaultyFileSystem::Open(const std::string& path, bool truncate,
                           std::unique_ptr<WritableFile>& file) {
  if (const int e = Check(Op::kOpen)) return e;
  std::unique_ptr<WritableFile> real;
  if (const int e = PosixFileSystem().Open(path, truncate, real)) return e;
  file = std::make_unique<File>(*this, path, std::move(real));
  return 0;
}

int FaultyFileSystem::Rename(const std::string& from, const std::string& to) {
  if (const int e = PosixFileSystem().Rename(from, to)) return e;
  if (auto it = unsynced_.find(from); it != unsynced_.end()) {
    unsynced_[to] = std::move(it->second);
    unsynced_.erase(from);
  }
  return 0;
}

int FaultyFileSystem::Remove(const std::string& path) {
  unsynced_.erase(path);
  return PosixFileSystem().Remove(path);
}

int FaultyFileSystem::SyncDir(const std::string& dir) {
  if (const int e = Check(Op::kSyncDir)) return e;
  return PosixFileSystem().SyncDir(dir);
}

}  // namespace pincer::test
