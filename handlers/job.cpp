#include "handlers/job.hpp"

#include <array>
#include <atomic>
#include <new>

namespace stampede {

namespace {
std::atomic<std::int64_t> frame_bytes{0};
}

std::int64_t live_frame_bytes() {
  return frame_bytes.load(std::memory_order_relaxed);
}

namespace detail {

namespace {

/// Freed frames of one thread, by size class of 64 bytes up to 2 KiB, at most 256 per class.
/// Larger frames and overflow go to the global allocator.
class frame_cache {
 public:
  static constexpr std::size_t granule = 64;
  static constexpr std::size_t classes = 32;
  static constexpr int per_class = 256;

  ~frame_cache() {
    for (auto& head : free_) {
      while (head != nullptr) {
        node* n = head;
        head = n->next;
        ::operator delete(n);
      }
    }
  }
  void* allocate(std::size_t bytes) {
    std::size_t c = (bytes + granule - 1) / granule;
    if (c == 0 || c > classes) return ::operator new(bytes);
    if (node* n = free_[c - 1]) {
      free_[c - 1] = n->next;
      --count_[c - 1];
      return n;
    }
    return ::operator new(c* granule);
  }
  void release(void* p, std::size_t bytes) noexcept {
    std::size_t c = (bytes + granule - 1) / granule;
    if (c == 0 || c > classes || count_[c - 1] >= per_class) {
      ::operator delete(p);
      return;
    }
    auto* n = static_cast<node*>(p);
    n->next = free_[c - 1];
    free_[c - 1] = n;
    ++count_[c - 1];
  }

 private:
  struct node {
    node* next;
  };
  std::array<node*, classes> free_{};
  std::array<int, classes> count_{};
};

thread_local frame_cache cache;

}  // namespace

void* allocate_frame(std::size_t bytes) {
  void* p = cache.allocate(bytes);
  frame_bytes.fetch_add(static_cast<std::int64_t>(bytes), std::memory_order_relaxed);
  return p;
}

void free_frame(void* p, std::size_t bytes) noexcept {
  frame_bytes.fetch_sub(static_cast<std::int64_t>(bytes), std::memory_order_relaxed);
  cache.release(p, bytes);
}

}  // namespace detail
}  // namespace stampede
