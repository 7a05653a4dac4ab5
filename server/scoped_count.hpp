#pragma once
/// \file A count held up for as long as an object lives.

#include <atomic>

namespace stampede {

/// \brief Adds one to a count for its lifetime: the front end's open connections and
/// requests in flight, which the connection limit and shutdown read.
class scoped_count {
 public:
  explicit scoped_count(std::atomic<int>& c) : count_(c) { ++count_; }
  ~scoped_count() { --count_; }
  scoped_count(const scoped_count&) = delete;
  scoped_count& operator=(const scoped_count&) = delete;

 private:
  std::atomic<int>& count_;
};

}  // namespace stampede
