// POSIX mmap of a whole file, PROT_READ + MAP_PRIVATE: the checkpoint is never written, and the
// descriptor is closed right away because the mapping holds its own reference to the file.
#include "io/mmap_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace cascade {

namespace {

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

std::shared_ptr<const MappedFile> MappedFile::open(const std::filesystem::path& path) {
  const std::string name = path.string();
  const Fd f{::open(name.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) fail(name, ": cannot open (", std::strerror(errno), ")");
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) fail(name, ": cannot stat (", std::strerror(errno), ")");
  if (!S_ISREG(st.st_mode)) fail(name, ": not a regular file");
  if (st.st_size == 0) fail(name, ": file is empty");
  const size_t size = size_t(st.st_size);
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, f.fd, 0);
  if (p == MAP_FAILED) fail(name, ": cannot memory-map (", std::strerror(errno), ")");
  return std::shared_ptr<const MappedFile>(new MappedFile(path, static_cast<const uint8_t*>(p), size));
}

void MappedFile::drop_pages(const void* p, size_t n) {
  const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + page - 1) / page * page;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + n) / page * page;
  // MADV_DONTNEED on a read-only private file mapping that was never written discards nothing the
  // file cannot give back; a failure only leaves the pages resident.
  if (end > begin) (void)::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

MappedFile::~MappedFile() { ::munmap(const_cast<uint8_t*>(data_), size_); }

}  // namespace cascade
