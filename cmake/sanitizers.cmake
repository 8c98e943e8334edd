# EMBEDSTREAM_SANITIZE="address;undefined" (asan preset) or "thread" (tsan preset).
if(EMBEDSTREAM_SANITIZE)
  string(REPLACE ";" "," _es_san "${EMBEDSTREAM_SANITIZE}")
  add_compile_options(-fsanitize=${_es_san} -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=${_es_san})
endif()
