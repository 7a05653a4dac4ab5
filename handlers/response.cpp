#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "handlers/work.hpp"

// What the router needs of handlers/, kept apart from the workloads: the fuzz build (clang 14
// with sanitizers, which cannot compile coroutines) links the router and this file only.

namespace stampede {

std::string_view to_string(handler_id h) {
  switch (h) {
    case handler_id::io:
      return "io";
    case handler_id::cpu:
      return "cpu";
    case handler_id::fanout:
      return "fanout";
    case handler_id::healthz:
      return "healthz";
    case handler_id::lab:
      return "lab";
    case handler_id::other:
      return "other";
  }
  return "other";
}

response error_response(int status, std::string_view message, std::string_view reason,
                        std::string_view mode) {
  response r;
  r.status = status;
  r.body = boost::json::serialize(boost::json::object{
      {"error", message}, {"status", status}, {"reason", reason}, {"mode", mode}});
  return r;
}

}  // namespace stampede
