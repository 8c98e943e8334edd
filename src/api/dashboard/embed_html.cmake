# Turns the dashboard page into a C++ source file (a raw string literal), run
# at build time by src/api/CMakeLists.txt so that editing the page rebuilds:
#   cmake -DINPUT=index.html -DOUTPUT=dashboard_html.cc -P embed_html.cmake
# The output is written only when its content changes.
cmake_minimum_required(VERSION 3.22)
if(NOT INPUT OR NOT OUTPUT)
  message(FATAL_ERROR "usage: cmake -DINPUT=<html> -DOUTPUT=<cc> -P embed_html.cmake")
endif()

file(READ "${INPUT}" html)
set(delim "es_dashboard")  # at most 16 characters
string(FIND "${html}" ")${delim}\"" found)
if(NOT found EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains ')${delim}\"', the raw string's end: rename the delimiter in ${CMAKE_CURRENT_LIST_FILE}")
endif()
# A compiler turns CR LF in a raw string into LF: the page would no longer be
# byte for byte the file (and the unit test says so). Keep it LF.
string(FIND "${html}" "\r" cr)
if(NOT cr EQUAL -1)
  message(FATAL_ERROR "${INPUT} has CR (Windows) line endings; convert it to LF")
endif()

set(content "// Generated from ${INPUT} by embed_html.cmake. Do not edit.
#include \"api/dashboard.h\"

namespace embedstream::api {
namespace {
constexpr char kDashboardHtml[] = R\"${delim}(${html})${delim}\";
}  // namespace

std::string_view DashboardHtml() { return {kDashboardHtml, sizeof(kDashboardHtml) - 1}; }

}  // namespace embedstream::api
")

if(EXISTS "${OUTPUT}")
  file(READ "${OUTPUT}" old)
  if(old STREQUAL content)
    return()
  endif()
endif()
file(WRITE "${OUTPUT}" "${content}")
