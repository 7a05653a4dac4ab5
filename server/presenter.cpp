#include "server/presenter.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <map>

namespace stampede {

namespace {
constexpr std::size_t max_title = 200;
constexpr std::size_t max_text = 2000;
}  // namespace

std::optional<std::string> presenter_board::post(std::string_view body, double unix_time) {
  boost::system::error_code ec;
  auto v = boost::json::parse(body, ec);
  if (ec || !v.is_object()) return "the body must be a JSON object";
  const auto& o = v.as_object();
  banner b;
  for (const auto& [key, value] : o) {
    std::string* into = key == "kind"      ? &b.kind
                        : key == "title"   ? &b.title
                        : key == "predict" ? &b.predict
                        : key == "watch"   ? &b.watch
                        : key == "text"    ? &b.text
                                           : nullptr;
    if (into == nullptr) {
      return "unknown key: " + std::string(key) + " (kind, title, predict, watch, text)";
    }
    if (!value.is_string()) return std::string(key) + " must be a string";
    const auto& s = value.as_string();
    if (s.size() > (key == "title" ? max_title : max_text)) {
      return std::string(key) + " is longer than " +
             std::to_string(key == "title" ? max_title : max_text) + " bytes";
    }
    *into = std::string(s.data(), s.size());
  }
  if (b.kind != "start" && b.kind != "event" && b.kind != "verdict") {
    return "kind must be one of: start, event, verdict";
  }
  if (b.title.empty()) return "title is required";
  b.since = unix_time;
  std::lock_guard lock(mutex_);
  if (b.kind == "start") {
    banner_ = b;
  } else if (b.kind == "verdict") {
    // The verdict keeps the run's prediction beside it: the room checks one against the other.
    if (banner_ && banner_->title == b.title) {
      if (b.predict.empty()) b.predict = banner_->predict;
      if (b.watch.empty()) b.watch = banner_->watch;
    }
    banner_ = b;
  }
  events_.push_back({unix_time, b.kind, b.title});
  if (events_.size() > kept) events_.pop_front();
  ++total_;
  return std::nullopt;
}

std::string presenter_board::to_json() const {
  std::lock_guard lock(mutex_);
  boost::json::array events;
  for (const auto& e : events_) {
    events.push_back(boost::json::object{{"t", e.t}, {"kind", e.kind}, {"title", e.title}});
  }
  boost::json::value banner = nullptr;
  if (banner_) {
    banner = boost::json::object{{"kind", banner_->kind},       {"title", banner_->title},
                                 {"predict", banner_->predict}, {"watch", banner_->watch},
                                 {"text", banner_->text},       {"since", banner_->since}};
  }
  return boost::json::serialize(boost::json::object{{"banner", banner}, {"events", events}});
}

void presenter_board::collect(std::vector<prometheus::MetricFamily>& families) const {
  std::lock_guard lock(mutex_);
  prometheus::MetricFamily total;
  total.name = "stampede_annotations_total";
  total.help = "Presenter annotations posted to the admin port (POST /annotations)";
  total.type = prometheus::MetricType::Counter;
  total.metric.emplace_back();
  total.metric.back().counter.value = static_cast<double>(total_);
  families.push_back(std::move(total));
  prometheus::MetricFamily at;
  at.name = "stampede_annotation_time_seconds";
  at.help = "When each of the last presenter annotations was posted (Unix time), by kind and title";
  at.type = prometheus::MetricType::Gauge;
  std::map<std::pair<std::string, std::string>, double> latest;  // one series per label set
  for (const auto& e : events_) latest[{e.kind, e.title}] = e.t;
  for (const auto& [labels, t] : latest) {
    prometheus::ClientMetric m;
    m.label = {{"kind", labels.first}, {"title", labels.second}};
    m.gauge.value = t;
    at.metric.push_back(std::move(m));
  }
  families.push_back(std::move(at));
}

}  // namespace stampede
