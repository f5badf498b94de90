// MappedFile: a whole file mapped read-only. Checkpoints are read through it so that float32
// weights are used in place (Tensor::view) and pages load lazily. Tensors viewing the map hold a
// shared_ptr to it (as their std::shared_ptr<const void> owner), so the mapping lives as long as
// any weight taken from it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>

namespace cascade {

class MappedFile {
 public:
  // Throws cascade::Error naming the file when it is missing, not a regular file, unreadable or
  // empty (a zero-length mapping is impossible, and no checkpoint is empty).
  static std::shared_ptr<const MappedFile> open(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

  // Drops the pages wholly inside [p, p + n), which must lie in a mapping made by open(), from this
  // process (its resident set); the page cache keeps them and the next read maps them back, so the
  // contents never change. A loader that has copied a range to the GPU calls it so that the host
  // holds the mapped file's pages only while they are being read.
  static void drop_pages(const void* p, size_t n);

 private:
  MappedFile(std::filesystem::path path, const uint8_t* data, size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}

  std::filesystem::path path_;
  const uint8_t* data_;
  size_t size_;
};

}  // namespace cascade
