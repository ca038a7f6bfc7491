// Reading a whole (small) file: config files, token files, payload files.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>

namespace pincer {

// The file's bytes; nullopt with `*error` set ("No such file or directory",
// "is a directory", ...) when it cannot be read. Never throws.
std::optional<std::string> ReadFile(const std::string& path, std::string* error);

// Like ReadFile, for files pincerd reads on its own (config and token
// files), which must not be able to hang or exhaust it: only a regular file
// (symlinks followed) is read, never a device, FIFO or socket ("/dev/zero"
// is refused at once, and opening a FIFO does not wait for a writer); a file
// longer than `max_bytes` is refused without reading past the limit. On
// success `*mode` (when given) holds the file's permission bits, as read
// from the opened file.
std::optional<std::string> ReadRegularFile(const std::string& path, std::size_t max_bytes,
                                           std::string* error, mode_t* mode = nullptr);

// "4 MiB", "64 KiB", "1000 bytes": a byte limit for messages.
std::string FormatByteLimit(std::size_t bytes);

}  // namespace pincer
