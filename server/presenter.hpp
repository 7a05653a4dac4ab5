#pragma once
/// \file The presenter's board: what a lesson or a scenario says it is running (POST
/// /annotations on the admin port), shown as the live page's banner and as markers on its
/// charts, and exported for Grafana's annotations.

#include <prometheus/metric_family.h>

#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace stampede {

/// \brief The banner and the last events. Thread-safety: every member may be called from any
/// thread.
class presenter_board {
 public:
  /// Events kept (and exported as series): a lesson marks a handful.
  static constexpr std::size_t kept = 50;

  /// Takes one POST /annotations body, a JSON object:
  ///   {"kind": "start"|"event"|"verdict", "title": "...", "predict", "watch", "text"}
  /// start sets the banner (what runs, what to watch, what to predict); verdict puts its text
  /// on the banner once the run has ended; event only marks the charts. Every kind is an
  /// event. Returns what is wrong with the body, or nothing once it is taken.
  std::optional<std::string> post(std::string_view body, double unix_time);

  /// {"banner": {...} or null, "events": [{"t", "kind", "title"}, ...]}, oldest event first.
  std::string to_json() const;

  /// stampede_annotations_total, and stampede_annotation_time_seconds{kind,title}: each kept
  /// event's Unix time as its value (Grafana: "series value as timestamp").
  void collect(std::vector<prometheus::MetricFamily>& families) const;

 private:
  struct event {
    double t;
    std::string kind;
    std::string title;
  };
  struct banner {
    std::string kind, title, predict, watch, text;
    double since = 0;
  };
  mutable std::mutex mutex_;
  std::optional<banner> banner_;
  std::deque<event> events_;
  std::uint64_t total_ = 0;
};

}  // namespace stampede
