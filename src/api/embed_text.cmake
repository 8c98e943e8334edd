# Turns a text file into a C++ source file that returns it (a raw string
# literal), run at build time by src/api/CMakeLists.txt so that editing the
# file rebuilds. Used for the dashboard page and docs/openapi.yaml:
#   cmake -DINPUT=index.html -DOUTPUT=dashboard_html.cc -DHEADER=api/dashboard.h
#         -DFUNCTION=DashboardHtml -DDELIM=es_dashboard -P embed_text.cmake
# defines `std::string_view embedstream::api::FUNCTION()` (declared in HEADER).
# The output is written only when its content changes.
cmake_minimum_required(VERSION 3.22)
foreach(arg INPUT OUTPUT HEADER FUNCTION DELIM)
  if(NOT ${arg})
    message(FATAL_ERROR "usage: cmake -DINPUT=<file> -DOUTPUT=<cc> -DHEADER=<h> -DFUNCTION=<name> -DDELIM=<at most 16 chars> -P embed_text.cmake")
  endif()
endforeach()

file(READ "${INPUT}" text)
string(FIND "${text}" ")${DELIM}\"" found)
if(NOT found EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains ')${DELIM}\"', the raw string's end: pass another DELIM")
endif()
# A compiler turns CR LF in a raw string into LF: the text would no longer be
# byte for byte the file (and the unit tests say so). Keep it LF.
string(FIND "${text}" "\r" cr)
if(NOT cr EQUAL -1)
  message(FATAL_ERROR "${INPUT} has CR (Windows) line endings; convert it to LF")
endif()

set(content "// Generated from ${INPUT} by embed_text.cmake. Do not edit.
#include \"${HEADER}\"

namespace embedstream::api {
namespace {
constexpr char kText[] = R\"${DELIM}(${text})${DELIM}\";
}  // namespace

std::string_view ${FUNCTION}() { return {kText, sizeof(kText) - 1}; }

}  // namespace embedstream::api
")

if(EXISTS "${OUTPUT}")
  file(READ "${OUTPUT}" old)
  if(old STREQUAL content)
    return()
  endif()
endif()
file(WRITE "${OUTPUT}" "${content}")
