#include "server/http_types.h"

#include "core/json_writer.h"

namespace embedstream::server {

HttpResponse JsonError(int status, std::string_view error, std::string_view detail) {
  JsonWriter w;
  w.BeginObject().Key("error").String(error).Key("detail").String(detail).EndObject();
  HttpResponse response;
  response.status = status;
  response.body = w.Take();
  return response;
}

HttpResponse JsonOk(std::string body, int status) {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

}  // namespace embedstream::server
